// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITokenReceiver} from "./HookToken.sol";

/// @notice An account (client or node) that, when paid, calls back into `target` with
/// `attack` and records how that call ended.
contract Reentrant is ITokenReceiver {
    address public target;
    bytes public attack;
    uint256 public attempts;
    bool public reentrySucceeded;
    bytes public reentryError;

    function arm(address target_, bytes calldata attack_) external {
        target = target_;
        attack = attack_;
    }

    /// @dev Lets the test act as this account (approve, deposit, stake, submit).
    function exec(address to, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    function onTokenReceived(address, uint256) external {
        if (target == address(0) || attempts > 0) return;
        attempts += 1;
        (bool ok, bytes memory ret) = target.call(attack);
        reentrySucceeded = ok;
        reentryError = ret;
    }
}
