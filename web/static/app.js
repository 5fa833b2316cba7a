// Upload page: sends each image to POST /api/v1/detect and draws the boxes as an SVG overlay.
// Colours, label sizes and label placement follow common/drawing.py (the server-drawn image).
(function () {
  'use strict';

  var MAX_PARALLEL = 2;
  // When no box reaches the threshold, the best ones under it are drawn faded (at most this
  // many; the API returns up to 3 in below_threshold).
  var MAX_FADED = 3;
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var form = document.getElementById('upload-form');
  var input = document.getElementById('image-input');
  var dropzone = document.getElementById('dropzone');
  var threshold = document.getElementById('threshold');
  var thresholdValue = document.getElementById('threshold-value');
  var results = document.getElementById('results');
  var template = document.getElementById('card-template');
  var errorBox = document.getElementById('error');
  var palette = JSON.parse(document.body.dataset.palette);
  var maxLabels = parseInt(document.body.dataset.maxLabels, 10);
  var minFont = parseInt(document.body.dataset.minFont, 10);
  var queue = [];
  var running = 0;
  var cards = [];

  document.documentElement.classList.add('js');
  input.multiple = true;

  // Class 1 takes the first colour (class 0 is the background), as drawing.class_colour.
  function classColour(classId) {
    var n = palette.length;
    return palette[(((classId - 1) % n) + n) % n];
  }

  function currentThreshold() {
    return parseFloat(threshold.value);
  }

  function setStatus(card, text) {
    card.el.querySelector('.status').textContent = text;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function safeName(name) {
    return (name || 'image').replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  }

  function swatch(classId) {
    var el = document.createElement('span');
    el.className = 'swatch';
    el.style.background = classColour(classId).fill;
    return el;
  }

  function showClasses(classes) {
    var list = document.getElementById('class-list');
    var ids = Object.keys(classes).map(Number).filter(function (id) { return id > 0; });
    ids.sort(function (a, b) { return a - b; });
    list.replaceChildren('This model detects ' + ids.length + (ids.length === 1 ? ' class: ' : ' classes: '));
    ids.forEach(function (id, index) {
      var item = document.createElement('span');
      item.className = 'class-name';
      item.append(swatch(id), classes[String(id)]);
      list.append(item, index < ids.length - 1 ? ', ' : '.');
    });
    list.hidden = false;
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
      info.append(strong, ' \u00b7 ' + model.network);
      showClasses(model.classes);
    }).catch(function () { /* the header keeps the configured model name */ });
  }

  function addCard(file) {
    var el = template.content.firstElementChild.cloneNode(true);
    el.querySelector('.filename').textContent = file.name || 'image';
    var img = el.querySelector('img');
    img.src = URL.createObjectURL(file);
    img.alt = file.name || 'uploaded image';
    results.append(el);
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

  // The detections the page knows under the current threshold, highest score first.
  function belowThreshold(card) {
    var minimum = currentThreshold();
    return card.body.detections.concat(card.body.below_threshold || [])
      .filter(function (d) { return d.score < minimum; })
      .sort(function (a, b) { return b.score - a.score; });
  }

  // Moves the slider (as a user would: the boxes are filtered, and asked for again when lower).
  function setThreshold(value) {
    threshold.value = value.toFixed(2);
    threshold.dispatchEvent(new Event('input', {bubbles: true}));
    threshold.dispatchEvent(new Event('change', {bubbles: true}));
  }

  // The slider position that shows a detection of this score: rounded down to the slider's step.
  function thresholdFor(score) {
    var step = parseFloat(threshold.step);
    return Math.max(parseFloat(threshold.min), Math.floor(score / step + 1e-9) * step);
  }

  function render(card) {
    var body = card.body;
    var detections = visibleDetections(card);
    var below = belowThreshold(card);
    var faded = detections.length ? [] : below.slice(0, MAX_FADED);
    var rows = fillTable(card.el.querySelector('tbody'), detections, below[0]);
    drawBoxes(card.el.querySelector('svg'), body.image, detections, rows, faded);
    setStatus(card, '');
    card.el.querySelector('.summary').textContent = body.model.name + ' v' + body.model.version +
        ' \u00b7 ' + body.image.width + '\u00d7' + body.image.height + ' px \u00b7 ' +
        Math.round(body.timing_ms.total) + ' ms \u00b7 ' + detections.length +
        (detections.length === 1 ? ' detection' : ' detections') + ' \u00b7 ';
    if (card.jsonUrl) {
      URL.revokeObjectURL(card.jsonUrl);
    }
    var download = Object.assign({filename: card.file.name}, body,
                                 {detections: detections, score_threshold: currentThreshold(),
                                  below_threshold: below.slice(0, MAX_FADED)});
    card.jsonUrl = URL.createObjectURL(new Blob([JSON.stringify(download, null, 2)],
                                                {type: 'application/json'}));
    var link = card.el.querySelector('a.download');
    link.href = card.jsonUrl;
    link.download = safeName(card.file.name) + '.detections.json';
    link.hidden = false;
  }

  function svgElement(name, attributes) {
    var el = document.createElementNS(SVG_NS, name);
    Object.keys(attributes).forEach(function (key) { el.setAttribute(key, attributes[key]); });
    return el;
  }

  function rect(x, y, width, height, attributes) {
    return svgElement('rect', Object.assign({x: x, y: y, width: Math.max(0, width),
                                             height: Math.max(0, height)}, attributes));
  }

  function overlaps(a, b) {
    return !(a[2] <= b[0] || b[2] <= a[0] || a[3] <= b[1] || b[3] <= a[1]);
  }

  // Highest scores first, at most maxLabels, none overlapping (drawing.choose_labels).
  function chooseLabels(rectangles) {
    var chosen = [];
    for (var index = 0; index < rectangles.length && chosen.length < maxLabels; index++) {
      if (!chosen.some(function (other) { return overlaps(rectangles[index], rectangles[other]); })) {
        chosen.push(index);
      }
    }
    return chosen;
  }

  // detections come sorted by descending score; rows are their table rows. faded: detections
  // under the threshold drawn dashed and pale (only when no detection reaches it).
  function drawBoxes(svg, image, detections, rows, faded) {
    svg.setAttribute('viewBox', '0 0 ' + image.width + ' ' + image.height);
    svg.replaceChildren();
    // drawing.line_and_font_size, with its minimum font size in screen pixels (the picture is
    // shown scaled): imagePixels image pixels make one screen pixel.
    var side = Math.max(image.width, image.height);
    var imagePixels = image.width / (svg.getBoundingClientRect().width || image.width);
    var line = Math.max(imagePixels, Math.round(side / 250));
    var fontSize = Math.max(minFont * imagePixels, Math.round(side / 36));
    var boxLayer = svgElement('g', {'class': 'boxes'});
    var labelLayer = svgElement('g', {'class': 'labels'});
    svg.append(boxLayer, labelLayer);
    var groups = detections.concat(faded).map(function (d, index) {
      var colour = classColour(d.class_id);
      var x = d.box_px[0], y = d.box_px[1], w = d.box_px[2] - x, h = d.box_px[3] - y;
      var box = svgElement('g', {'class': index < detections.length ? 'detection' : 'detection faded'});
      var title = svgElement('title', {});
      title.textContent = d.class_name + ' ' + d.score.toFixed(2);
      box.append(rect(x, y, w, h, {'class': 'halo', stroke: colour.text, 'stroke-width': line + 2}),
                 rect(x, y, w, h, {'class': 'box', stroke: colour.fill, 'stroke-width': line}),
                 rect(x, y, w, h, {'class': 'hit', 'stroke-width': Math.max(3 * line, 6)}), title);
      var label = svgElement('g', {'class': index < detections.length ? 'label' : 'label faded'});
      var text = svgElement('text', {'font-size': fontSize, fill: colour.text});
      text.textContent = title.textContent;
      var background = rect(x, y, 0, fontSize + 2 * line, {fill: colour.fill});
      label.append(background, text);
      labelLayer.append(label);
      // Measured once laid out; estimated while the card is hidden (e.g. after an error).
      var width = (text.getComputedTextLength() || text.textContent.length * 0.62 * fontSize) +
                  2 * line;
      var height = fontSize + 2 * line;
      var top = y - height >= 0 ? y - height : y;
      top = Math.min(top, Math.max(0, image.height - height));
      var left = Math.min(x, Math.max(0, image.width - width));
      background.setAttribute('x', left);
      background.setAttribute('y', top);
      background.setAttribute('width', width);
      text.setAttribute('x', left + line);
      text.setAttribute('y', top + line + fontSize * 0.85);
      return {box: box, label: label, rectangle: [left, top, left + width, top + height]};
    });
    // Lowest score first, so the best boxes are on top.
    groups.slice().reverse().forEach(function (group) { boxLayer.append(group.box); });
    var chosen = chooseLabels(groups.map(function (group) { return group.rectangle; }));
    groups.forEach(function (group, index) {
      if (chosen.indexOf(index) < 0) {
        group.label.classList.add('on-hover');
      }
      if (index >= detections.length) {
        return;  // faded boxes have no table row
      }
      var highlight = function (on) {
        if (on) {
          labelLayer.append(group.label);  // on top of the other labels
        }
        group.box.classList.toggle('highlight', on);
        group.label.classList.toggle('highlight', on);
        rows[index].classList.toggle('highlight', on);
      };
      [group.box, rows[index]].forEach(function (el) {
        el.addEventListener('mouseenter', function () { highlight(true); });
        el.addEventListener('mouseleave', function () { highlight(false); });
      });
    });
  }

  // best: the highest-scored detection under the threshold (undefined if none), named when
  // no detection reaches the threshold, with a button moving the slider down to it.
  function fillTable(tbody, detections, best) {
    tbody.replaceChildren();
    if (!detections.length) {
      var empty = tbody.insertRow();
      empty.className = 'empty';
      var cell = empty.insertCell();
      cell.colSpan = 4;
      if (!best) {
        cell.textContent = 'Nothing detected in this image, at any threshold.';
        return [];
      }
      var lower = thresholdFor(best.score);
      cell.textContent = 'No detection scores ' + currentThreshold().toFixed(2) +
          ' or more; the highest is ' + best.score.toFixed(2) + ' (' + best.class_name + '). ';
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'lower-threshold';
      button.textContent = 'Lower the threshold to ' + lower.toFixed(2);
      button.addEventListener('click', function () { setThreshold(lower); });
      cell.append(button);
      return [];
    }
    return detections.map(function (d, index) {
      var row = tbody.insertRow();
      row.insertCell().textContent = String(index + 1);
      row.insertCell().append(swatch(d.class_id), d.class_name);
      row.insertCell().textContent = d.score.toFixed(3);
      var box = row.insertCell();
      box.className = 'box';
      box.textContent = d.box_px.map(Math.round).join(', ');  // as drawing.display_box
      return row;
    });
  }

  function submitFiles(files) {
    if (!files || !files.length) {
      showError('Choose one or more images first (' +
                document.querySelector('.dropzone-hint').textContent + ').');
      return;
    }
    showError('');
    var added = Array.prototype.map.call(files, function (file) {
      var card = addCard(file);
      enqueue(card);
      return card;
    });
    added[0].el.scrollIntoView({block: 'nearest', behavior: 'smooth'});
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    submitFiles(input.files);
    input.value = '';
  });

  input.addEventListener('change', function () {
    if (input.files.length) {
      submitFiles(input.files);
      input.value = '';
    }
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
