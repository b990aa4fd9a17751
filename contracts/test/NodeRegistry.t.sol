// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {NodeRegistry} from "../NodeRegistry.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

/// @notice The registry on its own, with this test contract acting as the market.
contract NodeRegistryTest is MarketFixture {
    NodeRegistry internal reg;
    address internal node;

    function setUp() public override {
        super.setUp();
        reg = new NodeRegistry(IERC20(address(token)), MIN_STAKE, UNBONDING, TERMS_LOCK);
        reg.setMarket(address(this));
        node = nodes[0];
        vm.prank(node);
        token.approve(address(reg), type(uint256).max);
    }

    function _stake(uint256 amount) internal {
        vm.prank(node);
        reg.stake(amount, _config(0, 10, PRICE));
    }

    // ------------------------------------------------------------------ staking

    function testFirstStakeRegistersAndListsTheNode() public {
        INodeRegistry.NodeConfig memory cfg = _config(0, 10, PRICE);
        vm.expectEmit(true, true, true, true, address(reg));
        emit INodeRegistry.NodeConfigured(node, cfg.endpoint, cfg.pubkey, MODEL, 0, 10, PRICE, "cpu");
        vm.expectEmit(true, true, true, true, address(reg));
        emit INodeRegistry.NodeStaked(node, MIN_STAKE, MIN_STAKE);
        vm.prank(node);
        reg.stake(MIN_STAKE, cfg);

        INodeRegistry.Node memory got = reg.getNode(node);
        assertEq(got.stake, MIN_STAKE, "stake");
        assertEq(got.modelId, MODEL, "model");
        assertEq(got.end, 10, "span end");
        assertEq(got.hardware, bytes32("cpu"), "hardware class");
        assertTrue(got.status == INodeRegistry.NodeStatus.Active, "active");
        assertTrue(reg.isActive(node), "isActive");
        assertEq(reg.activeCount(), 1, "active count");
        assertEq(reg.activeNodes(0, 10)[0], node, "listed");
        assertEq(token.balanceOf(address(reg)), MIN_STAKE, "tokens pulled");
    }

    function testTopUpAddsToStakeAndMayChangeConfig() public {
        _stake(MIN_STAKE);
        vm.expectEmit(true, true, true, true, address(reg));
        emit INodeRegistry.NodeStaked(node, 5, MIN_STAKE + 5);
        vm.prank(node);
        reg.stake(5, _config(0, 12, PRICE * 2));
        assertEq(reg.getNode(node).stake, MIN_STAKE + 5, "topped up");
        assertEq(reg.getNode(node).end, 12, "new span");
        assertEq(reg.activeCount(), 1, "listed once");
    }

    function testFirstStakeBelowMinimumReverts() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.StakeBelowMinimum.selector, node, MIN_STAKE - 1, MIN_STAKE));
        _stake(MIN_STAKE - 1);
    }

    function testBadConfigsRevert() public {
        INodeRegistry.NodeConfig memory cfg = _config(5, 5, PRICE);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.InvalidSpan.selector, uint16(5), uint16(5)));
        vm.prank(node);
        reg.stake(MIN_STAKE, cfg);

        cfg = _config(0, 10, PRICE);
        cfg.endpoint = "";
        vm.expectRevert(INodeRegistry.InvalidEndpoint.selector);
        vm.prank(node);
        reg.stake(MIN_STAKE, cfg);

        cfg.endpoint = string(new bytes(257));
        vm.expectRevert(INodeRegistry.InvalidEndpoint.selector);
        vm.prank(node);
        reg.stake(MIN_STAKE, cfg);

        cfg = _config(0, 10, PRICE);
        cfg.pubkey = bytes32(0);
        vm.expectRevert(INodeRegistry.InvalidPubkey.selector);
        vm.prank(node);
        reg.stake(MIN_STAKE, cfg);

        cfg = _config(0, 10, PRICE);
        cfg.modelId = bytes32(0);
        vm.expectRevert(INodeRegistry.InvalidModelId.selector);
        vm.prank(node);
        reg.stake(MIN_STAKE, cfg);

        cfg = _config(0, 10, PRICE);
        cfg.hardware = bytes32(0);
        vm.expectRevert(INodeRegistry.InvalidHardware.selector);
        vm.prank(node);
        reg.stake(MIN_STAKE, cfg);
    }

    function testEndpointOf256BytesIsAccepted() public {
        INodeRegistry.NodeConfig memory cfg = _config(0, 10, PRICE);
        cfg.endpoint = string(new bytes(256));
        vm.prank(node);
        reg.stake(MIN_STAKE, cfg);
        assertTrue(reg.isActive(node), "active");
    }

    function testUpdateConfigNeedsAnActiveNode() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeNotActive.selector, node));
        vm.prank(node);
        reg.updateConfig(_config(0, 10, PRICE));

        _stake(MIN_STAKE);
        INodeRegistry.NodeConfig memory cfg = _config(3, 7, 9);
        cfg.hardware = "cuda-sm86";
        vm.expectEmit(true, true, true, true, address(reg));
        emit INodeRegistry.NodeConfigured(node, cfg.endpoint, cfg.pubkey, MODEL, 3, 7, 9, "cuda-sm86");
        vm.prank(node);
        reg.updateConfig(cfg);
        assertEq(reg.getNode(node).pricePerToken, 9, "price updated");
        assertEq(reg.getNode(node).hardware, bytes32("cuda-sm86"), "hardware updated");
    }

    // ---------------------------------------------------------------- unbonding

    function testUnstakeThenWithdrawAfterTheDelay() public {
        _stake(MIN_STAKE);
        uint64 at = uint64(block.timestamp) + UNBONDING;
        vm.expectEmit(true, true, true, true, address(reg));
        emit INodeRegistry.UnstakeRequested(node, MIN_STAKE, at);
        vm.prank(node);
        reg.requestUnstake();
        assertTrue(!reg.isActive(node), "left the active set");
        assertEq(reg.activeCount(), 0, "not listed");

        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnbondingNotOver.selector, node, at - 1, at));
        vm.prank(node);
        reg.withdraw();

        vm.warp(at);
        uint256 before = token.balanceOf(node);
        vm.expectEmit(true, true, true, true, address(reg));
        emit INodeRegistry.StakeWithdrawn(node, MIN_STAKE);
        vm.prank(node);
        reg.withdraw();
        assertEq(token.balanceOf(node) - before, MIN_STAKE, "stake paid back");
        assertTrue(reg.getNode(node).status == INodeRegistry.NodeStatus.None, "deleted");
    }

    function testRequestUnstakeNeedsAnActiveNode() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeNotActive.selector, node));
        vm.prank(node);
        reg.requestUnstake();
    }

    function testWithdrawWithoutUnstakeReverts() public {
        _stake(MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotUnbonding.selector, node));
        vm.prank(node);
        reg.withdraw();
    }

    function testUnbondingNodeCannotStakeAgain() public {
        _stake(MIN_STAKE);
        vm.prank(node);
        reg.requestUnstake();
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeUnbonding.selector, node));
        _stake(MIN_STAKE);
    }

    function testActiveNodesPagesAndSurvivesRemoval() public {
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(nodes[i]);
            token.approve(address(reg), type(uint256).max);
            vm.prank(nodes[i]);
            reg.stake(MIN_STAKE, _config(0, 10, PRICE));
        }
        assertEq(reg.activeNodes(1, 1)[0], nodes[1], "second page");
        assertEq(reg.activeNodes(2, 5).length, 1, "short last page");
        assertEq(reg.activeNodes(3, 5).length, 0, "past the end");
        vm.prank(nodes[0]);
        reg.requestUnstake();
        address[] memory page = reg.activeNodes(0, 10);
        assertEq(page.length, 2, "two left");
        assertEq(page[0], nodes[2], "last moved into the gap");
        assertEq(page[1], nodes[1], "other kept");
    }

    // ------------------------------------------------------------------ slashing

    function testSlashTakesAtMostTheStakeAndDeactivates() public {
        _stake(MIN_STAKE + 10);
        vm.expectEmit(true, true, true, true, address(reg));
        emit INodeRegistry.NodeSlashed(node, 11, MIN_STAKE - 1);
        uint256 taken = reg.slash(node, 11, address(this));
        assertEq(taken, 11, "taken");
        assertTrue(reg.getNode(node).status == INodeRegistry.NodeStatus.Unbonding, "deactivated below minimum");
        assertEq(reg.getNode(node).unbondingAt, block.timestamp + UNBONDING, "normal delay");

        taken = reg.slash(node, type(uint256).max, address(this));
        assertEq(taken, MIN_STAKE - 1, "capped by the stake");
        assertEq(token.balanceOf(address(this)), MIN_STAKE + 10, "all sent to the market");
        assertEq(reg.slash(node, 5, address(this)), 0, "nothing left");
    }

    function testOnlyTheMarketSlashes() public {
        _stake(MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotMarket.selector, other));
        vm.prank(other);
        reg.slash(node, 1, other);
    }

    function testMarketIsSetOnceByTheOwner() public {
        NodeRegistry fresh = new NodeRegistry(IERC20(address(token)), MIN_STAKE, UNBONDING, TERMS_LOCK);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, other));
        vm.prank(other);
        fresh.setMarket(other);

        vm.expectRevert(INodeRegistry.InvalidMarket.selector);
        fresh.setMarket(address(0));

        vm.expectEmit(true, true, true, true, address(fresh));
        emit INodeRegistry.MarketSet(other);
        fresh.setMarket(other);
        assertEq(fresh.market(), other, "market");

        vm.expectRevert(INodeRegistry.MarketAlreadySet.selector);
        fresh.setMarket(address(this));
    }

    function testViewsReportConstructorValues() public view {
        assertEq(reg.minStake(), MIN_STAKE, "minStake");
        assertEq(reg.unbondingDelay(), UNBONDING, "delay");
        assertEq(address(reg.token()), address(token), "token");
    }

    // ---------------------------------------------------------------------- fuzz

    function testFuzzStakeMovesExactlyTheAmount(uint256 first, uint256 topUp) public {
        first = bound(first, MIN_STAKE, 500e18);
        topUp = bound(topUp, 0, 400e18);
        _stake(first);
        _stake(topUp);
        assertEq(reg.getNode(node).stake, first + topUp, "stake");
        assertEq(token.balanceOf(address(reg)), first + topUp, "registry balance");
        assertEq(token.balanceOf(node), 1_000e18 - first - topUp, "wallet");
    }

    function testFuzzWithdrawOnlyAfterTheDelay(uint256 amount, uint256 wait) public {
        amount = bound(amount, MIN_STAKE, 1_000e18);
        wait = bound(wait, 0, 2 * UNBONDING);
        _stake(amount);
        vm.prank(node);
        reg.requestUnstake();
        uint256 at = block.timestamp + UNBONDING;
        vm.warp(block.timestamp + wait);
        if (block.timestamp < at) {
            vm.expectRevert(abi.encodeWithSelector(INodeRegistry.UnbondingNotOver.selector, node, block.timestamp, at));
        }
        vm.prank(node);
        reg.withdraw();
        if (block.timestamp >= at) assertEq(token.balanceOf(node), 1_000e18, "whole stake back");
    }

    function testFuzzSlashNeverExceedsTheStake(uint256 amount, uint256 cut) public {
        amount = bound(amount, MIN_STAKE, 1_000e18);
        _stake(amount);
        uint256 taken = reg.slash(node, cut, address(this));
        assertLe(taken, amount, "taken <= stake");
        assertEq(taken, cut < amount ? cut : amount, "min(cut, stake)");
        assertEq(reg.getNode(node).stake + taken, amount, "stake + taken");
        assertEq(token.balanceOf(address(this)), taken, "sent to the market");
        assertTrue(reg.isActive(node) == (amount - taken >= MIN_STAKE), "active iff above minimum");
    }
}
