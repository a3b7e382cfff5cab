import CPareKernels
import XCTest

@testable import Pare

/// The word paths of the bitmask encoding (mask, compaction, scatter: pare_kernels.h) against the
/// per-set-bit path for other element sizes, on every tail length and mask-byte shape.
final class TensorCodecTests: XCTestCase {
    /// Words with a given density of nonzeros, including -0.0 and NaN payloads (nonzero bit patterns),
    /// and runs of zero and full mask bytes.
    func words(_ n: Int, density: Double, seed: UInt64) -> [UInt32] {
        var generator = SeededGenerator(seed: seed)
        let specials: [UInt32] = [0x8000_0000, 0x7FC0_0001, 0xFF80_0000, 1]
        return (0..<n).map { j in
            if (j / 64) % 5 == 1 { return 0 }  // whole zero mask bytes
            if (j / 64) % 5 == 2 { return UInt32(j + 1) }  // whole full mask bytes
            guard Double.random(in: 0..<1, using: &generator) < density else { return 0 }
            return j % 11 == 0 ? specials[j % specials.count] : UInt32.random(in: 1...UInt32.max, using: &generator)
        }
    }

    func bytes(_ w: [UInt32]) -> [UInt8] { w.withUnsafeBytes { Array($0) } }

    /// Both the AVX2 path (when this CPU has it) and the scalar one.
    func testWordPathsMatchThePerBitPath() throws {
        let hasAVX2 = pare_kernels_allow_simd(2) >= 1
        defer { _ = pare_kernels_allow_simd(2) }
        for simd in hasAVX2 ? [true, false] : [false] {
            _ = pare_kernels_allow_simd(simd ? 1 : 0)
            try checkWordPaths()
        }
    }

    /// A mask with more set bits than values (decode refuses it first) still reads no value past the last.
    func testScatterNeverReadsPastTheValues() {
        let values = bytes([10, 20, 30])
        for simd: Int32 in [1, 0] {
            _ = pare_kernels_allow_simd(simd)
            let out = TensorCodec.scatteredWords(mask: [0xFF, 0xFF, 0x01], values: values, count: 17)
            XCTAssertEqual(out, bytes([10, 20, 30] + [UInt32](repeating: 30, count: 14)), "simd \(simd)")
        }
        _ = pare_kernels_allow_simd(2)
    }

    func checkWordPaths() throws {
        for n in [1, 7, 8, 9, 63, 64, 65, 327, 1000, 4099] {
            for density in [0.0, 0.1, 0.5, 0.9, 1.0] {
                let raw = bytes(words(n, density: density, seed: UInt64(n) * 31 + UInt64(density * 10)))
                let (mask, nonzero) = TensorCodec.mask(raw, count: n, size: 4)
                // The reference mask: bit j set exactly when word j is not all zero bits.
                var expectedMask = [UInt8](repeating: 0, count: (n + 7) / 8)
                for j in 0..<n where raw[(4 * j)..<(4 * j + 4)].contains(where: { $0 != 0 }) {
                    expectedMask[j >> 3] |= 1 << UInt8(j & 7)
                }
                XCTAssertEqual(mask, expectedMask, "n \(n) density \(density)")
                XCTAssertEqual(nonzero, expectedMask.reduce(0) { $0 + $1.nonzeroBitCount })

                var reference = [UInt8](repeating: 0, count: nonzero * 4)
                raw.withUnsafeBytes { full in
                    reference.withUnsafeMutableBytes {
                        TensorCodec.moveBySetBits(mask: mask, from: full, to: $0, size: 4, gather: true)
                    }
                }
                let packed = try TensorCodec.packed(raw, mask: mask, count: n, nonzero: nonzero, size: 4)
                XCTAssertEqual(packed, reference, "n \(n) density \(density)")

                let decoded = try TensorCodec.decode(
                    .bitmask, dtype: .float32, shape: [n], nonzero: nonzero, channels: nil, channelAxes: nil,
                    streams: [mask, packed], fail: { PareError(file: "t", $0) })
                XCTAssertEqual(decoded, raw, "n \(n) density \(density)")
            }
        }
    }

    /// Words that change between the mask's pass and the packing's (a mapped file rewritten meanwhile):
    /// the packing writes nothing past its buffer and reports it.
    func testPackingMoreNonzerosThanTheMaskCountedIsRefusedNotOverflowed() {
        let raw = bytes((1...1000).map { UInt32($0) })
        let (mask, _) = TensorCodec.mask(raw, count: 1000, size: 4)
        for simd: Int32 in [1, 0] {
            _ = pare_kernels_allow_simd(simd)
            for claimed in [1, 3, 500, 999] {
                XCTAssertThrowsError(
                    try TensorCodec.packed(raw, mask: mask, count: 1000, nonzero: claimed, size: 4), "simd \(simd)")
            }
        }
        _ = pare_kernels_allow_simd(2)
    }

    func testMasksOfTheWrongLengthAreRefused() throws {
        let raw = bytes([0, 5, 0, 7, 9, 0, 0, 0, 1])
        let (mask, nonzero) = TensorCodec.mask(raw, count: 9, size: 4)
        let values = try TensorCodec.packed(raw, mask: mask, count: 9, nonzero: nonzero, size: 4)
        for wrong in [Array(mask.dropLast()), mask + [0]] {
            XCTAssertThrowsError(
                try TensorCodec.decode(
                    .bitmask, dtype: .float32, shape: [9], nonzero: nonzero, channels: nil, channelAxes: nil,
                    streams: [wrong, values], fail: { PareError(file: "t", $0) })
            ) { XCTAssertTrue("\($0)".contains("mask has"), "\($0)") }
        }
    }

    func testValuesOfTheWrongLengthAreRefusedNotRead() throws {
        let raw = bytes([0, 5, 0, 7, 9, 0, 0, 0, 1])
        let (mask, nonzero) = TensorCodec.mask(raw, count: 9, size: 4)
        let short = Array(try TensorCodec.packed(raw, mask: mask, count: 9, nonzero: nonzero, size: 4).dropLast(4))
        XCTAssertThrowsError(
            try TensorCodec.decode(
                .bitmask, dtype: .float32, shape: [9], nonzero: nonzero, channels: nil, channelAxes: nil,
                streams: [mask, short], fail: { PareError(file: "t", $0) })
        ) { XCTAssertTrue("\($0)".contains("bytes of values"), "\($0)") }
    }
}
