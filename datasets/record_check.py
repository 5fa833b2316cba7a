"""Which shard holds a corrupted record: turns TensorFlow's DataLossError into one line.

A TFRecord file is a sequence of records, each: length (uint64, little endian), masked
CRC-32C of the length (uint32), the data, masked CRC-32C of the data (uint32). tf.data
stops at a bad one with `corrupted record at <offset>` or `truncated record at <offset>`
(the offset of the header, or of the data when the data is bad), without naming the file.
`describe_data_loss` finds the shard with a bad record there (it walks the record headers and
reads only that record), so training and evaluation can stop with the file and the offset of
the record. Standard library only.
"""
import os
import re
import struct

_DATA_LOSS = re.compile(r'\b(corrupted|truncated) record at (\d+)')
_HEADER = 12  # length (8) + its CRC (4)
_FOOTER = 4   # CRC of the data


class CorruptRecordError(ValueError):
    """A bad record in a shard; the message names the file and the byte offset."""


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli) of bytes, as TFRecord uses it."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data):
    """TFRecord's masked CRC-32C of bytes."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _check_record(f, start, size):
    """The problem of the record starting at byte `start` of the open file, or None."""
    f.seek(start)
    header = f.read(_HEADER)
    if len(header) < _HEADER:
        return 'truncated: %d header bytes of %d before the end of the file' % (
            len(header), _HEADER)
    length_bytes, length_crc = header[:8], struct.unpack('<I', header[8:])[0]
    if masked_crc(length_bytes) != length_crc:
        return 'length checksum mismatch'
    length = struct.unpack('<Q', length_bytes)[0]
    if start + _HEADER + length + _FOOTER > size:
        return 'truncated: the record needs %d bytes, the file ends after %d' % (
            _HEADER + length + _FOOTER, size - start)
    data = f.read(length)
    if masked_crc(data) != struct.unpack('<I', f.read(_FOOTER))[0]:
        return 'data checksum mismatch'
    return None


def record_problem(path, offset):
    """What is wrong with the record of TFRecord file `path` that TensorFlow reports at byte
    `offset`: the record starting there (its header is bad) or 12 bytes before (its data).

    Returns:
        (start of the record, a short reason such as 'data checksum mismatch'), or None when
        no record of this file is there or it is sound.
    """
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        position = 0
        while position <= offset and position < size:
            if position in (offset, offset - _HEADER):
                problem = _check_record(f, position, size)
                if problem:
                    return position, problem
            f.seek(position)
            header = f.read(_HEADER)
            if len(header) < _HEADER:
                return None
            position += _HEADER + struct.unpack('<Q', header[:8])[0] + _FOOTER
    return None


def describe_data_loss(message, files):
    """One line naming the shard and offset of TensorFlow's bad-record message.

    Args:
        message: the DataLossError's message.
        files: the shards being read.

    Returns:
        the line, or None when `message` is not about a TFRecord record.
    """
    match = _DATA_LOSS.search(message)
    if not match:
        return None
    kind, offset = match.group(1), int(match.group(2))
    found = []
    for path in files:
        problem = record_problem(path, offset)
        if problem:
            found.append('byte offset %d of %s (%s)' % (problem[0], path, problem[1]))
    if found:
        return '%s record at %s: re-create the shard with tf_convert_data.py, or move it away' % (
            kind, ', '.join(found))
    return ('%s record at byte offset %d of one of the %d shards (none shows it now: was it '
            'replaced?)' % (kind, offset, len(files)))
