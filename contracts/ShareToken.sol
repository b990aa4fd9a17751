// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title SharedLLM Share
/// @notice The network's ERC-20 (with EIP-2612 permit): stakes, job payments and rewards.
contract ShareToken is ERC20, ERC20Permit, Ownable {
    /// @param initialSupply Minted to the deployer, who also becomes the owner.
    constructor(uint256 initialSupply)
        ERC20("SharedLLM Share", "SHARE")
        ERC20Permit("SharedLLM Share")
        Ownable(msg.sender)
    {
        _mint(msg.sender, initialSupply);
    }

    /// @notice Mints new tokens; the owner is the devnet faucet.
    /// @param to Receiver of the new tokens.
    /// @param amount Amount in SHARE wei.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
