// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Builds per-step receipts in the 173-byte layout the hops sign (job id, hop, step,
/// first position, positions, input hash, output hash, big-endian, then a 64-byte signature)
/// and the commitment over them, written out independently of the market's own parser.
library Receipts {
    uint256 internal constant BYTES = 173;

    struct Receipt {
        bytes32 jobId;
        uint8 hop;
        uint32 step;
        uint32 start;
        uint32 positions;
        bytes32 input;
        bytes32 output;
    }

    /// @dev One receipt per hop and step, in (step, hop) order, chained hop to hop: hop 0
    /// reads the step's embedding, each later hop reads the previous hop's output. Step `s`
    /// covers `positions[s]` positions right after the previous step's.
    function chain(bytes32 jobId, uint256 hops, uint32[] memory positions)
        internal
        pure
        returns (Receipt[] memory rs)
    {
        rs = new Receipt[](hops * positions.length);
        uint256 start = 0;
        for (uint256 s = 0; s < positions.length; ++s) {
            bytes32 input = keccak256(abi.encode("embedding", jobId, s));
            for (uint256 h = 0; h < hops; ++h) {
                bytes32 output = keccak256(abi.encode("activation", jobId, s, h));
                rs[s * hops + h] = Receipt({
                    jobId: jobId,
                    hop: uint8(h),
                    step: uint32(s),
                    start: uint32(start),
                    positions: positions[s],
                    input: input,
                    output: output
                });
                input = output;
            }
            start += positions[s];
        }
    }

    /// @dev A prompt step of `prompt` positions followed by `generated` one-position steps.
    function steps(uint32 prompt, uint256 generated) internal pure returns (uint32[] memory positions) {
        positions = new uint32[](1 + generated);
        positions[0] = prompt;
        for (uint256 i = 1; i <= generated; ++i) {
            positions[i] = 1;
        }
    }

    function pack(Receipt memory r) internal pure returns (bytes memory) {
        return abi.encodePacked(
            r.jobId,
            r.hop,
            r.step,
            r.start,
            r.positions,
            r.input,
            r.output,
            keccak256(abi.encode("signature", r.hop, r.step, 0)),
            keccak256(abi.encode("signature", r.hop, r.step, 1))
        );
    }

    function encode(Receipt[] memory rs) internal pure returns (bytes memory blob) {
        for (uint256 i = 0; i < rs.length; ++i) {
            blob = bytes.concat(blob, pack(rs[i]));
        }
    }

    /// @dev `sha256("sharedllm/commitment/v1" ‖ sha256(receipt_1) ‖ …)` over the blob as given.
    function commitment(bytes memory blob) internal pure returns (bytes32) {
        require(blob.length % BYTES == 0, "whole receipts only");
        bytes memory acc = "sharedllm/commitment/v1";
        for (uint256 k = 0; k < blob.length / BYTES; ++k) {
            acc = bytes.concat(acc, sha256(slice(blob, k * BYTES, BYTES)));
        }
        return sha256(acc);
    }

    function commitment(Receipt[] memory rs) internal pure returns (bytes32) {
        return commitment(encode(rs));
    }

    /// @dev The positions an unbroken chain of `rs` covers.
    function total(uint32[] memory positions) internal pure returns (uint32 sum) {
        for (uint256 i = 0; i < positions.length; ++i) {
            sum += positions[i];
        }
    }

    function slice(bytes memory data, uint256 from, uint256 len) internal pure returns (bytes memory out) {
        out = new bytes(len);
        for (uint256 i = 0; i < len; ++i) {
            out[i] = data[from + i];
        }
    }

    /// @dev `rs` without the element at `index`.
    function without(Receipt[] memory rs, uint256 index) internal pure returns (Receipt[] memory out) {
        out = new Receipt[](rs.length - 1);
        for (uint256 i = 0; i < out.length; ++i) {
            out[i] = rs[i < index ? i : i + 1];
        }
    }
}
