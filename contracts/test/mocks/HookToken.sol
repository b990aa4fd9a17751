// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Receives ERC-777-style notifications from `HookToken`.
interface ITokenReceiver {
    function onTokenReceived(address from, uint256 amount) external;
}

/// @notice An ERC-20 that notifies registered receivers after every transfer to them, the way
/// ERC-777 `tokensReceived` hooks do: a receiver runs code in the middle of the payer's call.
contract HookToken is ERC20 {
    mapping(address => bool) public hooked;

    constructor() ERC20("Hook", "HOOK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setHooked(address receiver, bool on) external {
        hooked[receiver] = on;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (hooked[to]) ITokenReceiver(to).onTokenReceived(from, value);
    }
}
