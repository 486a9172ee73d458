#!/usr/bin/env python3
"""Counts the pixels of a PNG (8-bit RGB/RGBA, not interlaced) close to the
colours given as hex (#0969da), for tests that look at screenshots.

    png_colors.py image.png 0969da cf222e   ->  "0969da 1234\ncf222e 56\n"
"""
import struct
import sys
import zlib


def pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, "unsupported PNG"
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(width):
            yield tuple(line[x * bpp:x * bpp + 3])
        prev = line


def main():
    wanted = [(h, tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))) for h in sys.argv[2:]]
    counts = {h: 0 for h, _ in wanted}
    for px in pixels(sys.argv[1]):
        for h, rgb in wanted:
            if all(abs(px[i] - rgb[i]) <= 24 for i in range(3)):
                counts[h] += 1
    for h, _ in wanted:
        print(h, counts[h])


main()
