# Writes the seeds of tests/fuzz/corpus/wire (and event, which reads the
# same framing): selector bytes (writer index, reader pick, flags; the
# indexes STELE_FUZZ_SCHEMAS=1 prints), then Avro binary. Run from the root.
import struct, os
def zz(n):
    n = (n << 1) ^ (n >> 63)
    out = b''
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])
def s(x): x = x.encode() if isinstance(x, str) else x; return zz(len(x)) + x
import sys
d = (sys.argv[1] if len(sys.argv) > 1 else 'tests/fuzz/corpus/wire') + '/'
seeds = {
 # writer, reader selector, flags, payload
 'moved_v1': (3, 0, 0, zz(1250)),
 'moved_v2': (4, 1, 0, zz(99) + s('EUR')),
 'moved_v3_as_v4': (5, 3, 0, zz(99) + s('EUR') + zz(3)),
 'pair': (7, 0, 0, zz(-1) + zz(2**31 - 1)),
 'strict_v1_as_v2': (10, 1, 0, zz(5)),
 'strict_v2_as_v1': (11, 0, 0, zz(5) + zz(6)),
 'choice_evo_v1_as_v2': (0, 1, 0, zz(0) + zz(0)),
 'rec_v1_as_v2': (8, 1, 0, s('id') + zz(7) + struct.pack('<f', 1.5) + s('str')
     + s(b'\x00\xff') + zz(2) + zz(1) + s('old') + zz(0) + zz(42) + zz(1) + zz(17)
     + zz(3) + zz(1) + zz(2) + zz(0) + zz(1) + s('k') + zz(9) + zz(0) + zz(11)),
 'choice_test': (13, 0, 0, zz(1) + s(b'\x01\x02') + zz(2) + zz(4)),
 'deposited_v1_as_v2': (14, 1, 0, s('acc-1') + zz(100) + zz(1) + s('memo') + zz(1)),
 'node_chain': (17, 0, 0, zz(1) + zz(1) + zz(2) + zz(1) + zz(3) + zz(0)),
 'order': (18, 0, 0, s('o1') + zz(1) + s('sku') + zz(2) + zz(0) + zz(0)
     + zz(2) + s('iban') + s('bic') + zz(2) + struct.pack('<d', 2.5) + zz(1)
     + struct.pack('<f', 0.25) + zz(1) + s('a') + s('b') + zz(0) + zz(1) + s(b'\x00')),
 'raw_header_only': (3, 0, 1, b'\x00\x00\x00\x00\x04'),
 'raw_bad_magic': (3, 0, 1, b'\x01\x00\x00\x00\x04\x02'),
}
for name, (w, r, f, p) in seeds.items():
    open(d + name, 'wb').write(bytes([w, r, f]) + p)
