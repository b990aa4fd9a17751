// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {JobMarket} from "../JobMarket.sol";
import {NodeRegistry} from "../NodeRegistry.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

contract JobMarketEscrowTest is MarketFixture {
    bytes32 private constant _PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    function testConstructorRejectsInconsistentParams() public {
        IJobMarket.MarketParams memory p = _params();
        p.withdrawalDelay = p.maxJobTtl;
        vm.expectRevert(IJobMarket.InvalidParams.selector);
        new JobMarket(IERC20(address(token)), registry, p);

        p = _params();
        p.bountyBps = 10_001;
        vm.expectRevert(IJobMarket.InvalidParams.selector);
        new JobMarket(IERC20(address(token)), registry, p);

        p = _params();
        p.challengeWindow = UNBONDING;
        vm.expectRevert(IJobMarket.InvalidParams.selector);
        new JobMarket(IERC20(address(token)), registry, p);

        NodeRegistry otherToken = new NodeRegistry(IERC20(address(0xdead)), MIN_STAKE, UNBONDING, TERMS_LOCK);
        vm.expectRevert(IJobMarket.InvalidParams.selector);
        new JobMarket(IERC20(address(token)), otherToken, _params());
    }

    function testParamsAreReadable() public view {
        IJobMarket.MarketParams memory p = market.params();
        assertEq(p.withdrawalDelay, 2 days, "withdrawalDelay");
        assertEq(p.challengeWindow, 1 hours, "challengeWindow");
        assertEq(p.slashAmount, 50e18, "slashAmount");
        assertEq(p.bountyBps, 2_000, "bountyBps");
        assertEq(p.rewardPerToken, 1e15, "rewardPerToken");
        assertEq(address(market.token()), address(token), "token");
        assertEq(market.registry(), address(registry), "registry");
    }

    function testDepositAddsToEscrow() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.Deposited(client, 7e18, 7e18);
        _deposit(client, 7e18);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.Deposited(client, 1, 7e18 + 1);
        _deposit(client, 1);
        assertEq(market.escrowOf(client), 7e18 + 1, "escrow");
        assertEq(market.totalEscrow(), 7e18 + 1, "total");
    }

    function testDepositWithPermitNeedsNoApproval() public {
        address holder = vm.addr(0xBEEF);
        token.mint(holder, 10e18);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(_PERMIT_TYPEHASH, holder, address(market), 4e18, token.nonces(holder), deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xBEEF, digest);

        // Someone replays the permit from the mempool first: the deposit must still go through.
        token.permit(holder, address(market), 4e18, deadline, v, r, s);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.Deposited(holder, 4e18, 4e18);
        vm.prank(holder);
        market.depositWithPermit(4e18, deadline, v, r, s);
        assertEq(market.escrowOf(holder), 4e18, "escrow");
    }

    function testWithdrawalWaitsForTheDelay() public {
        _deposit(client, 10e18);
        uint64 readyAt = uint64(block.timestamp + 2 days);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.WithdrawalRequested(client, 4e18, readyAt);
        vm.prank(client);
        market.requestWithdrawal(4e18);
        (uint256 amount, uint64 at) = market.pendingWithdrawal(client);
        assertEq(amount, 4e18, "pending amount");
        assertEq(at, readyAt, "readyAt");

        vm.warp(readyAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WithdrawalNotReady.selector, client, readyAt - 1, readyAt));
        vm.prank(client);
        market.withdraw();

        vm.warp(readyAt);
        uint256 before = token.balanceOf(client);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.Withdrawn(client, 4e18);
        vm.prank(client);
        market.withdraw();
        assertEq(token.balanceOf(client) - before, 4e18, "paid");
        assertEq(market.escrowOf(client), 6e18, "rest stays");
        (amount, at) = market.pendingWithdrawal(client);
        assertEq(at, 0, "request consumed");
    }

    function testWithdrawalAboveEscrowReverts() public {
        _deposit(client, 1e18);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InsufficientEscrow.selector, client, 1e18, 1e18 + 1));
        vm.prank(client);
        market.requestWithdrawal(1e18 + 1);
    }

    function testWithdrawWithoutRequestReverts() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoPendingWithdrawal.selector, client));
        vm.prank(client);
        market.withdraw();
    }

    function testNewRequestReplacesTheOldOneAndRestartsTheClock() public {
        _deposit(client, 10e18);
        vm.prank(client);
        market.requestWithdrawal(10e18);
        vm.warp(block.timestamp + 1 days);
        vm.prank(client);
        market.requestWithdrawal(3e18);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.WithdrawalNotReady.selector, client, block.timestamp, block.timestamp + 1 days
            )
        );
        vm.prank(client);
        market.withdraw();
        vm.warp(block.timestamp + 1 days);
        vm.prank(client);
        market.withdraw();
        assertEq(market.escrowOf(client), 7e18, "only the new amount left");
    }

    // ---------------------------------------------------------------------- fuzz

    function testFuzzDepositAndWithdraw(uint256 deposited, uint256 requested, uint256 wait) public {
        deposited = bound(deposited, 0, 1_000e18);
        requested = bound(requested, 0, deposited);
        wait = bound(wait, 0, 4 days);
        _deposit(client, deposited);
        vm.prank(client);
        market.requestWithdrawal(requested);
        uint256 readyAt = block.timestamp + 2 days;
        vm.warp(block.timestamp + wait);
        if (block.timestamp < readyAt) {
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.WithdrawalNotReady.selector, client, block.timestamp, readyAt)
            );
        }
        vm.prank(client);
        market.withdraw();
        uint256 out = block.timestamp < readyAt ? 0 : requested;
        assertEq(token.balanceOf(client), 1_000e18 - deposited + out, "wallet");
        assertEq(market.escrowOf(client), deposited - out, "escrow");
        _assertConserved(_actors());
    }
}
