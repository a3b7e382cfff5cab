// libFuzzer harness for the .pare reader: structure, offsets, checksums, every tensor decoded,
// the model section parsed. The reader works on files, so each input is written to one file in
// /dev/shm (memory) first. See tools/fuzz/README.md.
import Foundation
import FuzzReplay
import Pare

let scratch: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return dir + "/pare-fuzz-\(getpid()).pare"
}()

func readFile(_ bytes: [UInt8]) {
    guard FileManager.default.createFile(atPath: scratch, contents: Data(bytes)) else { return }
    _ = try? PareFile.check(scratch)
    if let model = try? ModelFile.read(scratch) { _ = try? Inspection.of(model) }
}

func crc32(_ b: ArraySlice<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in b {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}

func putLE(_ v: UInt32, into b: inout [UInt8], at i: Int) {
    for k in 0..<4 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
}

/// The input with its prologue, header and trailer checksums made right again, so mutations of
/// the JSON header (shapes, offsets, encodings, the model section) reach the parser behind them.
func repaired(_ input: [UInt8]) -> [UInt8]? {
    var b = input
    guard b.count >= 96 else { return nil }
    putLE(crc32(b[0..<16]), into: &b, at: 16)
    let t = b.count - 32
    func le64(_ i: Int) -> Int { (0..<8).reduce(0) { $0 | Int(b[i + $1]) << (8 * $1) } }
    let h = le64(t + 8)
    let l = le64(t + 16)
    guard h >= 0, l >= 0, h <= t, l <= t - h else { return nil }
    putLE(crc32(b[h..<(h + l)]), into: &b, at: t + 24)
    putLE(crc32(b[t..<(t + 28)]), into: &b, at: t + 28)
    return b
}

func fuzzOne(_ bytes: [UInt8]) {
    readFile(bytes)
    if let fixed = repaired(bytes), fixed != bytes { readFile(fixed) }
}

@main struct Harness {
    static func main() {
        FuzzMain.run(fuzzOne)
        unlink(scratch)
    }
}
