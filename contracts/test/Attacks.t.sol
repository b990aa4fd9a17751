// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {NodeRegistry} from "../NodeRegistry.sol";
import {JobMarket} from "../JobMarket.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {HookToken} from "./mocks/HookToken.sol";
import {Reentrant} from "./mocks/Reentrant.sol";
import {ContractWallet} from "./mocks/ContractWallet.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

/// @notice One proof-of-concept per attack class, each asserting the attack fails.
contract AttacksTest is MarketFixture {
    bytes32 internal constant COMMITMENT = keccak256("receipts");

    // ---------------------------------------------------------------- reentrancy

    struct HookedMarket {
        HookToken token;
        NodeRegistry registry;
        JobMarket market;
        Reentrant attacker;
    }

    function _hookedMarket() internal returns (HookedMarket memory h) {
        h.token = new HookToken();
        h.registry = new NodeRegistry(IERC20(address(h.token)), MIN_STAKE, UNBONDING);
        h.market = new JobMarket(IERC20(address(h.token)), h.registry, _params());
        h.registry.setMarket(address(h.market));
        h.attacker = new Reentrant();
        h.token.mint(address(h.attacker), 1_000e18);
        h.attacker.exec(address(h.token), abi.encodeCall(IERC20.approve, (address(h.market), type(uint256).max)));
        h.attacker.exec(address(h.token), abi.encodeCall(IERC20.approve, (address(h.registry), type(uint256).max)));
    }

    function _assertBlocked(Reentrant attacker) internal view {
        assertEq(attacker.attempts(), 1, "the hook did call back");
        assertTrue(!attacker.reentrySucceeded(), "re-entry failed");
        assertEq(
            bytes32(attacker.reentryError()),
            bytes32(ReentrancyGuard.ReentrancyGuardReentrantCall.selector),
            "blocked by the guard"
        );
    }

    function testReentrantClientCannotWithdrawTwice() public {
        HookedMarket memory h = _hookedMarket();
        h.attacker.exec(address(h.market), abi.encodeCall(JobMarket.deposit, (10e18)));
        h.attacker.exec(address(h.market), abi.encodeCall(JobMarket.requestWithdrawal, (4e18)));
        vm.warp(block.timestamp + 2 days);
        h.token.setHooked(address(h.attacker), true);
        h.attacker.arm(address(h.market), abi.encodeCall(JobMarket.withdraw, ()));

        h.attacker.exec(address(h.market), abi.encodeCall(JobMarket.withdraw, ()));

        _assertBlocked(h.attacker);
        assertEq(h.token.balanceOf(address(h.attacker)), 994e18, "paid once");
        assertEq(h.market.escrowOf(address(h.attacker)), 6e18, "escrow charged once");
    }

    function testReentrantNodeCannotBePaidTwice() public {
        HookedMarket memory h = _hookedMarket();
        h.token.mint(client, 10e18);
        vm.startPrank(client);
        h.token.approve(address(h.market), type(uint256).max);
        h.market.deposit(10e18);
        vm.stopPrank();
        h.attacker.exec(
            address(h.registry), abi.encodeCall(NodeRegistry.stake, (MIN_STAKE, _config(0, 30, PRICE)))
        );

        IJobMarket.Job memory job = _job(client, 1);
        job.route = new address[](1);
        job.route[0] = address(h.attacker);
        job.spanStarts = new uint16[](1);
        job.spanEnds = new uint16[](1);
        job.spanEnds[0] = 30;
        bytes memory sig = _sign(h.market, job, CLIENT_KEY);
        h.attacker.exec(address(h.market), abi.encodeCall(JobMarket.submitResult, (job, sig, 8, COMMITMENT)));
        bytes32 jobHash = h.market.hashJob(job);

        vm.warp(block.timestamp + 1 hours);
        h.token.setHooked(address(h.attacker), true);
        h.attacker.arm(address(h.market), abi.encodeCall(JobMarket.finalize, (jobHash)));
        h.market.finalize(jobHash);

        _assertBlocked(h.attacker);
        assertEq(h.token.balanceOf(address(h.attacker)), 900e18 + 8 * 30 * PRICE, "paid once");
        assertEq(h.token.balanceOf(address(h.market)), 10e18 - 8 * 30 * PRICE, "rest still escrowed");
    }

    function testReentrantNodeCannotWithdrawItsStakeTwice() public {
        HookedMarket memory h = _hookedMarket();
        h.attacker.exec(
            address(h.registry), abi.encodeCall(NodeRegistry.stake, (MIN_STAKE, _config(0, 30, PRICE)))
        );
        h.attacker.exec(address(h.registry), abi.encodeCall(NodeRegistry.requestUnstake, ()));
        vm.warp(block.timestamp + UNBONDING);
        h.token.setHooked(address(h.attacker), true);
        h.attacker.arm(address(h.registry), abi.encodeCall(NodeRegistry.withdraw, ()));
        h.attacker.exec(address(h.registry), abi.encodeCall(NodeRegistry.withdraw, ()));

        _assertBlocked(h.attacker);
        assertEq(h.token.balanceOf(address(h.attacker)), 1_000e18, "stake back once");
        assertEq(h.token.balanceOf(address(h.registry)), 0, "registry empty");
    }

    // -------------------------------------------------------------------- replay

    function testSignedJobCannotBeReplayed() public {
        _stakeNodes();
        _deposit(client, 100e18);
        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 10, COMMITMENT);
        uint256 escrowAfterOne = market.escrowOf(client);

        // Same job again, by another hop and with another token count.
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobAlreadySubmitted.selector, market.hashJob(job)));
        vm.prank(nodes[2]);
        market.submitResult(job, sig, 20, COMMITMENT);
        assertEq(market.escrowOf(client), escrowAfterOne, "charged once");
    }

    function testSignatureDoesNotTransferToAnotherChain() public {
        _stakeNodes();
        _deposit(client, 100e18);
        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.chainId(1);
        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 10, COMMITMENT);
    }

    function testSignatureDoesNotTransferToAnotherMarket() public {
        _stakeNodes();
        JobMarket twin = new JobMarket(IERC20(address(token)), registry, _params());
        vm.prank(client);
        token.approve(address(twin), type(uint256).max);
        vm.prank(client);
        twin.deposit(100e18);
        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        vm.prank(nodes[0]);
        twin.submitResult(job, sig, 10, COMMITMENT);
    }

    // ------------------------------------------------------------- front-running

    /// A client who sees the node about to claim cannot pull its escrow out first: the
    /// withdrawal delay outlasts any job deadline it could have signed.
    function testClientCannotWithdrawAheadOfAClaim() public {
        _stakeNodes();
        _deposit(client, 1e18);
        IJobMarket.Job memory job = _job(client, 1);
        job.deadline = uint64(block.timestamp + 1 days); // maxJobTtl, the longest a node accepts
        bytes memory sig = _sign(market, job, CLIENT_KEY);

        vm.prank(client);
        market.requestWithdrawal(1e18);
        uint256 readyAt = block.timestamp + 2 days;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WithdrawalNotReady.selector, client, block.timestamp, readyAt));
        vm.prank(client);
        market.withdraw();

        vm.warp(job.deadline);
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 64, COMMITMENT);
        uint256 cost = 64 * 30 * PRICE;

        vm.warp(readyAt);
        vm.prank(client);
        market.withdraw();
        assertEq(token.balanceOf(client), 1_000e18 - cost, "client got back only what the job left");
        vm.warp(readyAt + 1 hours);
        market.finalize(market.hashJob(job));
        assertEq(token.balanceOf(nodes[0]), 900e18 + 64 * 10 * PRICE, "node paid in full");
    }

    // ------------------------------------------------------------------ rounding

    function testOneWeiPricesPayExactlyAndRewardDustStaysInThePool() public {
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(nodes[i]);
            registry.stake(MIN_STAKE, _config(uint16(10 * i), uint16(10 * i + 10), 1));
        }
        _deposit(client, 30);
        vm.prank(other);
        market.fundRewards(2);
        IJobMarket.Job memory job = _job(client, 1);
        job.maxPricePerToken = 1;
        bytes32 jobHash = _submit(job, 1);
        assertEq(market.escrowOf(client), 0, "30 wei charged");
        vm.warp(block.timestamp + 1 hours);
        market.finalize(jobHash);
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(token.balanceOf(nodes[i]), 900e18 + 10, "10 wei per hop");
        }
        assertEq(market.rewardPool(), 2, "2 wei cannot be split into thirds: nothing paid");
        _assertConserved(_actors());
    }

    function testTinySlashCreatesNoBountyFromNothing() public {
        IJobMarket.MarketParams memory p = _params();
        p.slashAmount = 3;
        p.bountyBps = 5_000;
        NodeRegistry reg = new NodeRegistry(IERC20(address(token)), 1, UNBONDING);
        JobMarket mkt = new JobMarket(IERC20(address(token)), reg, p);
        reg.setMarket(address(mkt));
        for (uint256 i = 0; i < 3; ++i) {
            vm.startPrank(nodes[i]);
            token.approve(address(reg), type(uint256).max);
            token.approve(address(mkt), type(uint256).max);
            reg.stake(1, _config(uint16(10 * i), uint16(10 * i + 10), 1));
            vm.stopPrank();
        }
        vm.startPrank(client);
        token.approve(address(mkt), type(uint256).max);
        mkt.deposit(1e18);
        vm.stopPrank();
        for (uint256 i = 0; i < 2; ++i) {
            vm.startPrank(verifiers[i]);
            token.approve(address(mkt), type(uint256).max);
            mkt.stakeVerifier(100e18);
            vm.stopPrank();
        }
        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(mkt, job, CLIENT_KEY);
        vm.prank(nodes[0]);
        mkt.submitResult(job, sig, 1, COMMITMENT);
        bytes32 jobHash = mkt.hashJob(job);

        vm.prank(verifiers[0]);
        mkt.challenge(jobHash, 0, bytes32(0));
        vm.expectEmit(true, true, true, true, address(mkt));
        emit IJobMarket.JobChallenged(jobHash, nodes[0], 0, 1, 0); // stake of 1 wei caps the slash
        vm.prank(verifiers[1]);
        mkt.challenge(jobHash, 0, bytes32(0));

        assertEq(mkt.rewardPool(), 1, "the slashed wei went to the pool");
        assertEq(token.balanceOf(verifiers[0]), 900e18, "no bounty rounded up");
        assertEq(
            token.balanceOf(address(mkt)),
            mkt.totalEscrow() + mkt.totalLocked() + mkt.totalVerifierStake() + mkt.rewardPool(),
            "books balance"
        );
    }

    // ------------------------------------------------------------------ griefing

    function testNoOneCanTouchAnotherAccountsUnbondingOrWithdrawal() public {
        _stakeNodes();
        _stakeVerifiers();
        _deposit(client, 10e18);
        vm.prank(client);
        market.requestWithdrawal(10e18);
        vm.prank(nodes[0]);
        registry.requestUnstake();
        uint64 unbondingAt = registry.getNode(nodes[0]).unbondingAt;
        (uint256 pending, uint64 readyAt) = market.pendingWithdrawal(client);

        vm.warp(block.timestamp + 1 days);
        vm.startPrank(other);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NodeNotActive.selector, other));
        registry.requestUnstake();
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.NotUnbonding.selector, other));
        registry.withdraw();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InsufficientEscrow.selector, other, 0, 10e18));
        market.requestWithdrawal(10e18);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoPendingWithdrawal.selector, other));
        market.withdraw();
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotVerifier.selector, other));
        market.requestVerifierUnstake();
        market.deposit(1); // a deposit only ever credits the caller
        vm.stopPrank();

        assertEq(registry.getNode(nodes[0]).unbondingAt, unbondingAt, "node's clock untouched");
        (uint256 pendingAfter, uint64 readyAfter) = market.pendingWithdrawal(client);
        assertEq(pendingAfter, pending, "client's request untouched");
        assertEq(readyAfter, readyAt, "client's clock untouched");
        assertTrue(market.isVerifier(verifiers[0]), "verifier untouched");

        vm.warp(readyAt);
        vm.prank(client);
        market.withdraw();
        assertEq(token.balanceOf(client), 1_000e18, "client withdrew on time");
    }

    // ------------------------------------------------------------------- ERC-1271

    function testContractWalletClientIsAccepted() public {
        _stakeNodes();
        ContractWallet wallet = new ContractWallet(client);
        token.mint(address(wallet), 10e18);
        vm.startPrank(client);
        wallet.exec(address(token), abi.encodeCall(IERC20.approve, (address(market), type(uint256).max)));
        wallet.exec(address(market), abi.encodeCall(JobMarket.deposit, (10e18)));
        vm.stopPrank();

        IJobMarket.Job memory job = _job(address(wallet), 1);
        bytes memory badSig = _sign(market, job, OTHER_KEY);
        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        vm.prank(nodes[0]);
        market.submitResult(job, badSig, 5, COMMITMENT);

        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 5, COMMITMENT);
        assertEq(market.escrowOf(address(wallet)), 10e18 - 5 * 30 * PRICE, "wallet's escrow paid");
    }
}
