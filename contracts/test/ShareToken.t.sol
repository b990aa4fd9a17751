// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ShareToken} from "../ShareToken.sol";
import {vm} from "./utils/Vm.sol";
import {Test} from "./utils/Test.sol";

contract ShareTokenTest is Test {
    ShareToken internal token;

    function setUp() public {
        token = new ShareToken(1_000e18);
    }

    function testDeployerGetsTheInitialSupplyAndOwnsTheFaucet() public view {
        assertEq(token.balanceOf(address(this)), 1_000e18, "initial supply");
        assertEq(token.totalSupply(), 1_000e18, "total supply");
        assertEq(token.owner(), address(this), "owner");
        assertEq(keccak256(bytes(token.symbol())), keccak256("SHARE"), "symbol");
        assertEq(keccak256(bytes(token.name())), keccak256("SharedLLM Share"), "name");
        assertEq(token.decimals(), 18, "decimals");
    }

    function testOnlyTheOwnerMints() public {
        token.mint(address(0xA11CE), 5);
        assertEq(token.balanceOf(address(0xA11CE)), 5, "minted");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(0xA11CE)));
        vm.prank(address(0xA11CE));
        token.mint(address(0xA11CE), 5);
    }

    function testFuzzMintAddsToSupply(address to, uint256 amount) public {
        vm.assume(to != address(0) && to != address(this));
        amount = bound(amount, 0, 1e30);
        token.mint(to, amount);
        assertEq(token.balanceOf(to), amount, "balance");
        assertEq(token.totalSupply(), 1_000e18 + amount, "supply");
    }
}
