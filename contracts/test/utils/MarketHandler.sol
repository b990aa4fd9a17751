// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ShareToken} from "../../ShareToken.sol";
import {NodeRegistry} from "../../NodeRegistry.sol";
import {JobMarket} from "../../JobMarket.sol";
import {INodeRegistry} from "../../interfaces/INodeRegistry.sol";
import {IJobMarket} from "../../interfaces/IJobMarket.sol";
import {vm} from "./Vm.sol";
import {Test} from "./Test.sol";

/// @notice The invariant fuzzer's only target: random but well-formed actions by a fixed
/// cast of clients, nodes and verifiers. Every call may fail; ghost flags record any call
/// that succeeded when it must not have.
contract MarketHandler is Test {
    bytes32 internal constant MODEL = keccak256("SmolLM2-135M-Instruct");

    ShareToken public immutable token;
    NodeRegistry public immutable registry;
    JobMarket public immutable market;

    uint256[] internal _clientKeys;
    address[] public clients;
    address[] public nodes;
    address[] public verifiers;
    bytes32[] public jobs;
    uint256 internal _nonce;

    mapping(bytes32 jobHash => uint256) public settlements;
    bool public settledTwice;
    bool public slashAboveStake;
    bool public leftEarly;

    constructor(
        ShareToken token_,
        NodeRegistry registry_,
        JobMarket market_,
        uint256[] memory clientKeys,
        address[] memory nodes_,
        address[] memory verifiers_
    ) {
        token = token_;
        registry = registry_;
        market = market_;
        _clientKeys = clientKeys;
        for (uint256 i = 0; i < clientKeys.length; ++i) {
            clients.push(vm.addr(clientKeys[i]));
        }
        nodes = nodes_;
        verifiers = verifiers_;
    }

    function actors() external view returns (address[] memory all) {
        all = new address[](clients.length + nodes.length + verifiers.length);
        uint256 k = 0;
        for (uint256 i = 0; i < clients.length; ++i) all[k++] = clients[i];
        for (uint256 i = 0; i < nodes.length; ++i) all[k++] = nodes[i];
        for (uint256 i = 0; i < verifiers.length; ++i) all[k++] = verifiers[i];
    }

    function jobCount() external view returns (uint256) {
        return jobs.length;
    }

    // -------------------------------------------------------------------- time

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 0, 3 days));
    }

    // ------------------------------------------------------------------ escrow

    function deposit(uint256 who, uint256 amount) external {
        address c = clients[who % clients.length];
        amount = bound(amount, 0, token.balanceOf(c));
        vm.prank(c);
        market.deposit(amount);
    }

    function fundRewards(uint256 who, uint256 amount) external {
        address c = clients[who % clients.length];
        amount = bound(amount, 0, token.balanceOf(c) / 10);
        vm.prank(c);
        market.fundRewards(amount);
    }

    function requestWithdrawal(uint256 who, uint256 amount) external {
        address c = clients[who % clients.length];
        amount = bound(amount, 0, market.escrowOf(c));
        vm.prank(c);
        market.requestWithdrawal(amount);
    }

    function withdrawEscrow(uint256 who) external {
        address c = clients[who % clients.length];
        (, uint64 readyAt) = market.pendingWithdrawal(c);
        vm.prank(c);
        try market.withdraw() {
            if (block.timestamp < readyAt) leftEarly = true;
        } catch {}
    }

    // ------------------------------------------------------------------- nodes

    function stakeNode(uint256 who, uint256 amount, uint256 price) external {
        uint256 i = who % nodes.length;
        amount = bound(amount, 0, token.balanceOf(nodes[i]));
        INodeRegistry.NodeConfig memory cfg = INodeRegistry.NodeConfig({
            endpoint: "http://node",
            pubkey: bytes32(i + 1),
            modelId: MODEL,
            start: uint16(10 * i),
            end: uint16(10 * i + 10),
            pricePerToken: bound(price, 0, 1e15)
        });
        vm.prank(nodes[i]);
        try registry.stake(amount, cfg) {} catch {}
    }

    function requestUnstake(uint256 who) external {
        vm.prank(nodes[who % nodes.length]);
        try registry.requestUnstake() {} catch {}
    }

    function withdrawNode(uint256 who) external {
        address n = nodes[who % nodes.length];
        uint64 unbondingAt = registry.getNode(n).unbondingAt;
        vm.prank(n);
        try registry.withdraw() {
            if (block.timestamp < unbondingAt) leftEarly = true;
        } catch {}
    }

    // --------------------------------------------------------------- verifiers

    function stakeVerifier(uint256 who, uint256 amount) external {
        address v = verifiers[who % verifiers.length];
        amount = bound(amount, 0, token.balanceOf(v));
        vm.prank(v);
        try market.stakeVerifier(amount) {} catch {}
    }

    function requestVerifierUnstake(uint256 who) external {
        vm.prank(verifiers[who % verifiers.length]);
        try market.requestVerifierUnstake() {} catch {}
    }

    function withdrawVerifier(uint256 who) external {
        address v = verifiers[who % verifiers.length];
        uint64 unbondingAt = market.getVerifier(v).unbondingAt;
        vm.prank(v);
        try market.withdrawVerifierStake() {
            if (block.timestamp < unbondingAt) leftEarly = true;
        } catch {}
    }

    // -------------------------------------------------------------------- jobs

    function submitJob(uint256 who, uint256 served, uint256 submitter) external {
        uint256 c = who % clients.length;
        IJobMarket.Job memory job;
        job.modelId = MODEL;
        job.route = new address[](nodes.length);
        job.spanStarts = new uint16[](nodes.length);
        job.spanEnds = new uint16[](nodes.length);
        for (uint256 i = 0; i < nodes.length; ++i) {
            job.route[i] = nodes[i];
            job.spanStarts[i] = uint16(10 * i);
            job.spanEnds[i] = uint16(10 * i + 10);
        }
        job.maxTokens = 256;
        job.maxPricePerToken = 1e15;
        job.nonce = ++_nonce;
        job.deadline = uint64(block.timestamp + 1 hours);
        job.client = clients[c];
        bytes32 jobHash = market.hashJob(job);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(_clientKeys[c], jobHash);
        vm.prank(nodes[submitter % nodes.length]);
        try market.submitResult(job, abi.encodePacked(r, s, v), uint32(bound(served, 1, 256)), bytes32(0)) {
            jobs.push(jobHash);
        } catch {}
    }

    function finalize(uint256 which) external {
        if (jobs.length == 0) return;
        bytes32 jobHash = jobs[which % jobs.length];
        try market.finalize(jobHash) {
            _settled(jobHash);
        } catch {}
    }

    function challenge(uint256 who, uint256 which, uint256 hop) external {
        if (jobs.length == 0) return;
        bytes32 jobHash = jobs[which % jobs.length];
        uint8 h = uint8(hop % nodes.length);
        address node = nodes[h];
        uint256 stakeBefore = registry.getNode(node).stake;
        uint256 heldBefore = token.balanceOf(address(registry));
        vm.prank(verifiers[who % verifiers.length]);
        try market.challenge(jobHash, h, bytes32(0)) {
            if (market.getJob(jobHash).status == IJobMarket.JobStatus.Challenged) {
                _settled(jobHash);
                uint256 taken = heldBefore - token.balanceOf(address(registry));
                if (taken > stakeBefore || registry.getNode(node).stake != stakeBefore - taken) {
                    slashAboveStake = true;
                }
            }
        } catch {}
    }

    function _settled(bytes32 jobHash) internal {
        settlements[jobHash] += 1;
        if (settlements[jobHash] > 1) settledTwice = true;
    }
}
