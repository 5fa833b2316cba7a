// Upload page: sends each image to POST /api/v1/detect and draws the boxes as an SVG overlay.
(function () {
  'use strict';

  var MAX_PARALLEL = 2;
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var form = document.getElementById('upload-form');
  var input = document.getElementById('image-input');
  var dropzone = document.getElementById('dropzone');
  var threshold = document.getElementById('threshold');
  var thresholdValue = document.getElementById('threshold-value');
  var results = document.getElementById('results');
  var template = document.getElementById('card-template');
  var queue = [];
  var running = 0;
  var cards = [];

  document.documentElement.classList.add('js');
  input.multiple = true;

  // Same colours as web/drawing.py: golden-angle hue steps per class id.
  function classColour(classId) {
    return 'hsl(' + ((classId * 137.508) % 360).toFixed(3) + ', 85%, 45%)';
  }

  function currentThreshold() {
    return parseFloat(threshold.value);
  }

  function setStatus(card, text) {
    card.el.querySelector('.status').textContent = text;
  }

  function safeName(name) {
    return (name || 'image').replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  }

  function loadModelInfo() {
    fetch('/api/v1/model').then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (reply) {
      var info = document.getElementById('model-info');
      if (!reply.ok) {
        info.textContent = 'Model server unavailable: ' + reply.body.error.message;
        return;
      }
      var model = reply.body;
      info.textContent = '';
      info.append('Model ');
      var strong = document.createElement('strong');
      strong.textContent = model.name + ' v' + model.version;
      info.append(strong, ' \u00b7 ' + model.network + ' \u00b7 ' +
                  (Object.keys(model.classes).length - 1) + ' classes');
    }).catch(function () { /* the header keeps the configured model name */ });
  }

  function addCard(file) {
    var el = template.content.firstElementChild.cloneNode(true);
    el.querySelector('.filename').textContent = file.name || 'image';
    var img = el.querySelector('img');
    img.src = URL.createObjectURL(file);
    img.alt = file.name || 'uploaded image';
    results.prepend(el);
    var card = {el: el, file: file, body: null, requested: null, jsonUrl: null};
    cards.push(card);
    return card;
  }

  function enqueue(card) {
    card.requested = currentThreshold();
    setStatus(card, 'Detecting\u2026');
    queue.push(card);
    pump();
  }

  function pump() {
    while (running < MAX_PARALLEL && queue.length) {
      running += 1;
      detect(queue.shift()).then(function () { running -= 1; pump(); });
    }
  }

  function detect(card) {
    var data = new FormData();
    data.append('image', card.file, card.file.name || 'image');
    data.append('score_threshold', String(card.requested));
    return fetch('/api/v1/detect', {method: 'POST', body: data}).then(function (response) {
      return response.json().catch(function () {
        return {error: {message: 'HTTP ' + response.status + ' ' + response.statusText}};
      }).then(function (body) {
        if (!response.ok || body.error) {
          fail(card, body.error.message);
        } else {
          card.body = body;
          card.el.classList.remove('failed');
          render(card);
        }
      });
    }).catch(function (error) {
      fail(card, 'The request failed: ' + error.message);
    });
  }

  function fail(card, message) {
    card.el.classList.add('failed');
    card.el.querySelector('.summary').textContent = '';
    card.el.querySelector('a.download').hidden = true;
    setStatus(card, message);
  }

  function visibleDetections(card) {
    var minimum = currentThreshold();
    return card.body.detections.filter(function (d) { return d.score >= minimum; });
  }

  function render(card) {
    var body = card.body;
    var detections = visibleDetections(card);
    drawBoxes(card.el.querySelector('svg'), body.image, detections);
    fillTable(card.el.querySelector('tbody'), detections);
    setStatus(card, '');
    card.el.querySelector('.summary').textContent = body.model.name + ' v' + body.model.version +
        ' \u00b7 ' + body.image.width + '\u00d7' + body.image.height + ' px \u00b7 ' +
        Math.round(body.timing_ms.request) + ' ms \u00b7 ' + detections.length +
        (detections.length === 1 ? ' detection' : ' detections') + ' \u00b7 ';
    if (card.jsonUrl) {
      URL.revokeObjectURL(card.jsonUrl);
    }
    var download = Object.assign({filename: card.file.name}, body,
                                 {detections: detections, score_threshold: currentThreshold()});
    card.jsonUrl = URL.createObjectURL(new Blob([JSON.stringify(download, null, 2)],
                                                {type: 'application/json'}));
    var link = card.el.querySelector('a.download');
    link.href = card.jsonUrl;
    link.download = safeName(card.file.name) + '.detections.json';
    link.hidden = false;
  }

  function drawBoxes(svg, image, detections) {
    svg.setAttribute('viewBox', '0 0 ' + image.width + ' ' + image.height);
    svg.replaceChildren();
    // Same sizes as web/drawing.py line_and_font_size.
    var side = Math.max(image.width, image.height);
    var line = Math.max(1, Math.round(side / 250));
    var fontSize = Math.max(8, Math.round(side / 36));
    detections.slice().reverse().forEach(function (d) {
      var colour = classColour(d.class_id);
      var x = d.box_px[0], y = d.box_px[1];
      var group = document.createElementNS(SVG_NS, 'g');
      var box = rect(x, y, d.box_px[2] - x, d.box_px[3] - y);
      box.setAttribute('class', 'box');
      box.setAttribute('stroke', colour);
      box.setAttribute('stroke-width', line);
      var labelHeight = fontSize + 2 * line;
      var labelY = y - labelHeight >= 0 ? y - labelHeight : y;
      var text = document.createElementNS(SVG_NS, 'text');
      text.textContent = d.class_name + ' ' + d.score.toFixed(2);
      text.setAttribute('x', x + line);
      text.setAttribute('y', labelY + line + fontSize * 0.85);
      text.setAttribute('font-size', fontSize);
      var label = rect(x, labelY, 0, labelHeight);
      label.setAttribute('fill', colour);
      label.setAttribute('class', 'label');
      group.append(box, label, text);
      svg.append(group);
      // Measured once laid out; estimated while the card is hidden (e.g. after an error).
      var textWidth = text.getComputedTextLength() || text.textContent.length * 0.62 * fontSize;
      label.setAttribute('width', textWidth + 2 * line);
    });
  }

  function rect(x, y, width, height) {
    var el = document.createElementNS(SVG_NS, 'rect');
    el.setAttribute('x', x);
    el.setAttribute('y', y);
    el.setAttribute('width', Math.max(0, width));
    el.setAttribute('height', Math.max(0, height));
    return el;
  }

  function fillTable(tbody, detections) {
    tbody.replaceChildren();
    if (!detections.length) {
      var empty = tbody.insertRow();
      empty.className = 'empty';
      var cell = empty.insertCell();
      cell.colSpan = 4;
      cell.textContent = 'No detections above ' + currentThreshold().toFixed(2) + '.';
      return;
    }
    detections.forEach(function (d, index) {
      var row = tbody.insertRow();
      row.insertCell().textContent = String(index + 1);
      var name = row.insertCell();
      var swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = classColour(d.class_id);
      name.append(swatch, d.class_name);
      row.insertCell().textContent = d.score.toFixed(3);
      var box = row.insertCell();
      box.className = 'box';
      box.textContent = d.box_px.map(Math.round).join(', ');
    });
  }

  function submitFiles(files) {
    Array.prototype.forEach.call(files, function (file) { enqueue(addCard(file)); });
    var error = document.getElementById('error');
    if (error) {
      error.remove();
    }
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    submitFiles(input.files);
    input.value = '';
  });

  input.addEventListener('change', function () {
    submitFiles(input.files);
    input.value = '';
  });

  // While sliding, filter what is there; once released, ask again where the server filtered more.
  threshold.addEventListener('input', function () {
    thresholdValue.textContent = currentThreshold().toFixed(2);
    cards.forEach(function (card) {
      if (card.body) {
        render(card);
      }
    });
  });

  threshold.addEventListener('change', function () {
    cards.forEach(function (card) {
      if (card.body && currentThreshold() < card.requested) {
        enqueue(card);
      }
    });
  });

  ['dragenter', 'dragover'].forEach(function (name) {
    dropzone.addEventListener(name, function (event) {
      event.preventDefault();
      dropzone.classList.add('dragging');
    });
  });
  ['dragleave', 'drop'].forEach(function (name) {
    dropzone.addEventListener(name, function () { dropzone.classList.remove('dragging'); });
  });
  dropzone.addEventListener('drop', function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      submitFiles(event.dataTransfer.files);
    }
  });

  loadModelInfo();
}());
