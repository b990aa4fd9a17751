// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Vm, vm} from "./Vm.sol";

/// @notice Assertions that revert with both values, and `bound` for fuzz inputs.
abstract contract Test {
    function assertTrue(bool ok, string memory what) internal pure {
        if (!ok) revert(string.concat("assertion failed: ", what));
    }

    function assertEq(uint256 got, uint256 want, string memory what) internal pure {
        if (got != want) {
            revert(string.concat(what, ": got ", vm.toString(got), ", want ", vm.toString(want)));
        }
    }

    function assertEq(address got, address want, string memory what) internal pure {
        if (got != want) {
            revert(string.concat(what, ": got ", vm.toString(got), ", want ", vm.toString(want)));
        }
    }

    function assertEq(bytes32 got, bytes32 want, string memory what) internal pure {
        if (got != want) {
            revert(string.concat(what, ": got ", vm.toString(got), ", want ", vm.toString(want)));
        }
    }

    function assertLe(uint256 got, uint256 limit, string memory what) internal pure {
        if (got > limit) {
            revert(string.concat(what, ": ", vm.toString(got), " > ", vm.toString(limit)));
        }
    }

    /// @dev Maps any fuzzed value into [min, max] without skewing towards the bounds.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + x % (size + 1);
    }
}
