// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @notice An OpenZeppelin-style Merkle tree over leaves in order: pairs hashed
/// commutatively, an odd node carried up unchanged (as the batch contract rebuilds it).
library MerkleTree {
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = _copy(leaves);
        uint256 n = level.length;
        while (n > 1) {
            n = _up(level, n);
        }
        return level[0];
    }

    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory path) {
        bytes32[] memory level = _copy(leaves);
        bytes32[] memory buf = new bytes32[](32);
        uint256 depth = 0;
        uint256 n = level.length;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) buf[depth++] = level[sibling];
            n = _up(level, n);
            index /= 2;
        }
        path = new bytes32[](depth);
        for (uint256 k = 0; k < depth; ++k) {
            path[k] = buf[k];
        }
    }

    function _up(bytes32[] memory level, uint256 n) private pure returns (uint256 half) {
        for (uint256 k = 0; k < n; k += 2) {
            level[half++] = k + 1 < n ? Hashes.commutativeKeccak256(level[k], level[k + 1]) : level[k];
        }
    }

    function _copy(bytes32[] memory a) private pure returns (bytes32[] memory b) {
        b = new bytes32[](a.length);
        for (uint256 k = 0; k < a.length; ++k) {
            b[k] = a[k];
        }
    }
}
