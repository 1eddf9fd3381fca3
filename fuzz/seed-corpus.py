#!/usr/bin/env python3
"""Seed the fuzz corpora from the keepalived captures in shared/vectors.

Writes one file per distinct VRRP frame:
  corpus/datagram/  the IP packet (IPv4 header included, as a raw socket returns it; IPv6 fixed
                    header for the IPv6 capture; AH left in place for the AH capture)
  corpus/decode/    the decode target's layout: selector byte, source, destination, VRRP message
                    (once per checksum mode, so every mode starts from verifying packets)
Usage: fuzz/seed-corpus.py [VECTOR_DIR]   (default: ../shared/vectors beside the repository)
"""

import hashlib
import pathlib
import struct
import sys

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "vectors"


def frames(path):
    data = path.read_bytes()
    endian = {b"\xa1\xb2\xc3\xd4": ">", b"\xd4\xc3\xb2\xa1": "<",
              b"\xa1\xb2\x3c\x4d": ">", b"\x4d\x3c\xb2\xa1": "<"}[data[:4]]
    at = 24
    while at < len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        yield data[at + 16:at + 16 + incl]
        at += 16 + incl


def split(frame):
    """(ip_packet, src, dst, vrrp_message, is_ipv6) or None for non-VRRP frames."""
    ethertype, ip = struct.unpack(">H", frame[12:14])[0], frame[14:]
    if ethertype == 0x0800:
        ihl = (ip[0] & 0x0F) * 4
        ip = ip[:struct.unpack(">H", ip[2:4])[0]]
        body = ip[ihl:]
        if ip[9] == 51 and body[0] == 112:
            body = body[(body[1] + 2) * 4:]
        elif ip[9] != 112:
            return None
        return ip, ip[12:16], ip[16:20], body, False
    if ethertype == 0x86DD and ip[6] == 112:
        ip = ip[:40 + struct.unpack(">H", ip[4:6])[0]]
        return ip, ip[8:24], ip[24:40], ip[40:], True
    return None


def write(directory, blob):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(blob).hexdigest()).write_bytes(blob)


def main():
    count = 0
    for pcap in sorted(VECTORS.glob("*.pcap")):
        for frame in frames(pcap):
            parts = split(frame)
            if parts is None:
                continue
            ip, src, dst, vrrp, v6 = parts
            write(HERE / "corpus" / "datagram", ip)
            for mode in range(3):
                write(HERE / "corpus" / "decode", bytes([mode | (4 if v6 else 0)]) + src + dst + vrrp)
            count += 1
    if count == 0:
        sys.exit(f"no VRRP frames found under {VECTORS}")
    print(f"seeded from {count} VRRP frames in {VECTORS}")


if __name__ == "__main__":
    main()
