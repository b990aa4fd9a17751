// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {NodeRegistry} from "../NodeRegistry.sol";
import {JobMarket} from "../JobMarket.sol";
import {DisputeCourt} from "../DisputeCourt.sol";
import {IDisputeCourt} from "../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {HookToken} from "./mocks/HookToken.sol";
import {Reentrant} from "./mocks/Reentrant.sol";
import {ContractWallet} from "./mocks/ContractWallet.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";
import {DisputeFixture} from "./utils/DisputeFixture.sol";
import {Receipts} from "./utils/Receipts.sol";

/// @notice One proof-of-concept per attack class, each asserting the attack fails.
contract AttacksTest is DisputeFixture {
    using Receipts for Receipts.Receipt[];

    bytes32 internal constant COMMITMENT = keccak256("receipts");

    /// @dev The fixture's network without verifiers: tests that need them stake them.
    function setUp() public override {
        MarketFixture.setUp();
    }

    function _network() internal {
        _stakeNodes();
        _stakeVerifiers();
        _deposit(client, 100e18);
    }

    // ---------------------------------------------------------------- reentrancy

    struct HookedMarket {
        HookToken token;
        NodeRegistry registry;
        JobMarket market;
        DisputeCourt court;
        Reentrant attacker;
    }

    function _hookedMarket() internal returns (HookedMarket memory h) {
        h.token = new HookToken();
        h.registry = new NodeRegistry(IERC20(address(h.token)), MIN_STAKE, UNBONDING, TERMS_LOCK);
        h.market = new JobMarket(IERC20(address(h.token)), h.registry, _params());
        h.registry.setMarket(address(h.market));
        h.court = new DisputeCourt(IERC20(address(h.token)), h.market, _courtParams());
        h.market.setCourt(address(h.court));
        h.attacker = _hookedAccount(h);
    }

    function _hookedAccount(HookedMarket memory h) internal returns (Reentrant account) {
        account = new Reentrant();
        h.token.mint(address(account), 1_000e18);
        account.exec(address(h.token), abi.encodeCall(IERC20.approve, (address(h.market), type(uint256).max)));
        account.exec(address(h.token), abi.encodeCall(IERC20.approve, (address(h.registry), type(uint256).max)));
        account.exec(address(h.token), abi.encodeCall(IERC20.approve, (address(h.court), type(uint256).max)));
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

    function testReentrantVerifierCannotWithdrawItsStakeTwice() public {
        HookedMarket memory h = _hookedMarket();
        h.attacker.exec(address(h.court), abi.encodeCall(DisputeCourt.stakeVerifier, (100e18)));
        h.attacker.exec(address(h.court), abi.encodeCall(DisputeCourt.requestVerifierUnstake, ()));
        vm.warp(block.timestamp + 3 days);
        h.token.setHooked(address(h.attacker), true);
        h.attacker.arm(address(h.court), abi.encodeCall(DisputeCourt.withdrawVerifierStake, ()));
        h.attacker.exec(address(h.court), abi.encodeCall(DisputeCourt.withdrawVerifierStake, ()));

        _assertBlocked(h.attacker);
        assertEq(h.token.balanceOf(address(h.attacker)), 1_000e18, "stake back once");
        assertEq(h.token.balanceOf(address(h.court)), 0, "court empty");
    }

    /// A juror paid by `resolve` calls `resolve` again from its token hook.
    function testReentrantJurorCannotBePaidTwice() public {
        HookedMarket memory h = _hookedMarket();
        for (uint256 i = 0; i < 3; ++i) {
            h.token.mint(nodes[i], 1_000e18);
            vm.startPrank(nodes[i]);
            h.token.approve(address(h.registry), type(uint256).max);
            h.registry.stake(MIN_STAKE, _config(uint16(10 * i), uint16(10 * i + 10), PRICE));
            vm.stopPrank();
        }
        h.token.mint(client, 10e18);
        vm.startPrank(client);
        h.token.approve(address(h.market), type(uint256).max);
        h.market.deposit(10e18);
        vm.stopPrank();
        h.token.mint(verifiers[0], 1_000e18);
        vm.startPrank(verifiers[0]);
        h.token.approve(address(h.court), type(uint256).max);
        h.court.stakeVerifier(100e18);
        vm.stopPrank();
        Reentrant[3] memory jurors = [h.attacker, _hookedAccount(h), _hookedAccount(h)];
        for (uint256 i = 0; i < 3; ++i) {
            jurors[i].exec(address(h.court), abi.encodeCall(DisputeCourt.stakeVerifier, (100e18)));
        }

        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(h.market, job, CLIENT_KEY);
        vm.prank(nodes[0]);
        h.market.submitResult(job, sig, 10, COMMITMENT);
        bytes32 jobHash = h.market.hashJob(job);
        vm.prank(verifiers[0]);
        h.court.openDispute(jobHash, 1, FAULT, EVIDENCE, BOND);
        vm.roll(block.number + 2);
        h.court.drawJury(jobHash);
        assertEq(h.court.getDispute(jobHash).jurors.length, 3, "the three contracts sit");
        for (uint256 i = 0; i < 3; ++i) {
            bytes32 c = h.court.voteCommitment(jobHash, 0, address(jurors[i]), true, bytes32(i + 1));
            jurors[i].exec(address(h.court), abi.encodeCall(DisputeCourt.commitVote, (jobHash, c)));
        }
        for (uint256 i = 0; i < 3; ++i) {
            jurors[i].exec(address(h.court), abi.encodeCall(DisputeCourt.revealVote, (jobHash, true, bytes32(i + 1))));
        }

        h.token.setHooked(address(jurors[0]), true);
        jurors[0].arm(address(h.court), abi.encodeCall(DisputeCourt.resolve, (jobHash)));
        h.court.resolve(jobHash);

        _assertBlocked(jurors[0]);
        uint256 share = (50e18 - 2 * 10 * 10 * PRICE) * 2_000 / 10_000 / 2 / 3;
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(h.token.balanceOf(address(jurors[i])), 900e18 + share, "each juror paid once");
        }
        assertEq(h.court.totalHeld(), 0, "nothing held");
        assertEq(h.token.balanceOf(address(h.court)), h.court.totalVerifierStake(), "court books");
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

    /// A juror who copies another's commitment cannot reveal it: the commitment names the
    /// juror, so the copied vote and salt do not open it.
    function testJurorCannotCopyAnotherJurorsVote() public {
        _network();
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        _commit(jobHash, jurors[0], true);
        bytes32 seen = court.getBallot(jobHash, jurors[0]).commitment;
        vm.prank(jurors[1]);
        court.commitVote(jobHash, seen); // the copy
        _commit(jobHash, jurors[2], false);
        _reveal(jobHash, jurors[0], true);

        bytes32 salt = _salt(jobHash, jurors[0]); // even once the original is revealed
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.CommitmentMismatch.selector, jobHash, jurors[1]));
        vm.prank(jurors[1]);
        court.revealVote(jobHash, true, salt);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.CommitmentMismatch.selector, jobHash, jurors[1]));
        vm.prank(jurors[1]);
        court.revealVote(jobHash, false, salt);
    }

    /// An empty commitment used to count as a commit while leaving the ballot open: a juror
    /// could send it three times to open reveals before the others had committed, watch
    /// their votes, then commit and reveal the winning one.
    function testEmptyCommitmentCannotOpenRevealsEarly() public {
        _network();
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        uint64 commitEndsAt = court.getDispute(jobHash).commitEndsAt;
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.EmptyCommitment.selector, jobHash, jurors[0]));
            vm.prank(jurors[0]);
            court.commitVote(jobHash, bytes32(0));
        }
        assertEq(court.getDispute(jobHash).committed, 0, "nothing counted");
        _commit(jobHash, jurors[1], false);
        _commit(jobHash, jurors[2], false);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.RevealNotOpen.selector, jobHash, commitEndsAt));
        _reveal(jobHash, jurors[1], false);
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
        NodeRegistry reg = new NodeRegistry(IERC20(address(token)), 1, UNBONDING, TERMS_LOCK);
        JobMarket mkt = new JobMarket(IERC20(address(token)), reg, p);
        reg.setMarket(address(mkt));
        for (uint256 i = 0; i < 3; ++i) {
            vm.startPrank(nodes[i]);
            token.approve(address(reg), type(uint256).max);
            reg.stake(1, _config(uint16(10 * i), uint16(10 * i + 10), 0)); // free hops: nothing to compensate
            vm.stopPrank();
        }
        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(mkt, job, CLIENT_KEY);
        bytes32 noReceipts = sha256("sharedllm/commitment/v1");
        vm.prank(nodes[0]);
        mkt.submitResult(job, sig, 1, noReceipts); // commits to no receipts
        bytes32 jobHash = mkt.hashJob(job);

        vm.expectEmit(true, true, true, true, address(mkt));
        emit IJobMarket.JobChallenged(jobHash, nodes[0], 0, 1, 0); // stake of 1 wei caps the slash
        vm.prank(verifiers[0]);
        mkt.proveOvercharge(jobHash, "");

        assertEq(mkt.rewardPool(), 1, "the slashed wei went to the pool");
        assertEq(token.balanceOf(verifiers[0]), 1_000e18, "no bounty rounded up");
        assertEq(
            token.balanceOf(address(mkt)), mkt.totalEscrow() + mkt.totalLocked() + mkt.rewardPool(), "books balance"
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
        vm.prank(verifiers[1]);
        court.requestVerifierUnstake();
        uint64 unbondingAt = registry.getNode(nodes[0]).unbondingAt;
        uint64 verifierAt = court.getVerifier(verifiers[1]).unbondingAt;
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
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotVerifier.selector, other));
        court.requestVerifierUnstake();
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotUnbonding.selector, other));
        court.withdrawVerifierStake();
        market.deposit(1); // a deposit only ever credits the caller
        vm.stopPrank();

        assertEq(registry.getNode(nodes[0]).unbondingAt, unbondingAt, "node's clock untouched");
        assertEq(court.getVerifier(verifiers[1]).unbondingAt, verifierAt, "verifier's clock untouched");
        (uint256 pendingAfter, uint64 readyAfter) = market.pendingWithdrawal(client);
        assertEq(pendingAfter, pending, "client's request untouched");
        assertEq(readyAfter, readyAt, "client's clock untouched");
        assertTrue(court.isVerifier(verifiers[0]), "verifier untouched");

        vm.warp(readyAt);
        vm.prank(client);
        market.withdraw();
        assertEq(token.balanceOf(client), 1_000e18, "client withdrew on time");
    }

    /// A lone verifier that stakes the minimum and disputes an honest job cannot slash it:
    /// it is not on the jury, an honest jury rejects, and its bond goes to the node it accused.
    function testLoneGrieferLosesItsBondAndCannotSlash() public {
        _network();
        address griefer = verifiers[0];
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        _open(jobHash, 1, FAULT, griefer, BOND);
        address[] memory jurors = _draw(jobHash);
        assertTrue(!_isIn(jurors, griefer), "the griefer does not judge");
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotJuror.selector, jobHash, griefer));
        vm.prank(griefer);
        court.commitVote(jobHash, keccak256("uphold"));

        _vote(jobHash, _unanimous(3, false));
        court.resolve(jobHash);
        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Rejected, "rejected");
        assertEq(registry.getNode(nodes[1]).stake, MIN_STAKE, "the node keeps its stake");
        assertEq(token.balanceOf(griefer), 1_000e18 - 100e18 - BOND, "the griefer lost its bond");
        assertEq(token.balanceOf(nodes[1]), 900e18 + BOND - BOND / 2, "half of it to the accused");

        vm.warp(block.timestamp + 1 hours);
        market.finalize(jobHash);
        assertEq(market.escrowOf(client), 100e18 - 10 * 30 * PRICE, "the client pays for the honest job");
        assertEq(token.balanceOf(nodes[1]), 900e18 + BOND - BOND / 2 + 10 * 10 * PRICE, "and the node is paid");
        _assertConserved(_actors());
    }

    /// Colluders that hold fewer than a majority of the jury (here: the challenger and one
    /// juror) cannot uphold; the colluding juror loses its penalty.
    function testColludingMinorityCannotUphold() public {
        _network();
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        _open(jobHash, 1, FAULT, verifiers[0], BOND);
        address[] memory jurors = _draw(jobHash);
        address colluder = jurors[0];
        _vote(jobHash, _votes(true, false, false));
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, colluder, PENALTY, true);
        court.resolve(jobHash);
        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Rejected, "rejected");
        assertEq(registry.getNode(nodes[1]).stake, MIN_STAKE, "no slash");
        assertEq(court.verifierStake(colluder), 90e18, "the colluding juror paid for it");
        _assertConserved(_actors());
    }

    /// A juror that commits and then stays silent, hoping to stall or to see which way the
    /// others went, loses its penalty; the coherent jurors take it.
    function testSilentJurorIsPenalised() public {
        _network();
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        for (uint256 i = 0; i < 3; ++i) {
            _commit(jobHash, jurors[i], false);
        }
        _reveal(jobHash, jurors[0], false);
        _reveal(jobHash, jurors[1], false);
        _afterReveals(jobHash);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, jurors[2], PENALTY, false);
        court.resolve(jobHash);
        assertEq(court.verifierStake(jurors[2]), 90e18, "silent juror penalised");
        uint256 each = (BOND / 2 + PENALTY) / 2;
        assertEq(token.balanceOf(jurors[0]), 900e18 + each, "its penalty shared by the others");
        _assertConserved(_actors());
    }

    /// However much stake the challenger holds, it never sits on its own jury.
    function testChallengerNeverSitsOnItsOwnJury() public {
        _network();
        address challenger = verifiers[0];
        token.mint(challenger, 10_000e18);
        vm.prank(challenger);
        court.stakeVerifier(10_000e18); // 99 percent of all verifier stake
        for (uint256 i = 0; i < 5; ++i) {
            bytes32 jobHash = _submit(_job(client, i + 1), SERVED);
            _open(jobHash, uint8(i % 3), FAULT, challenger, BOND);
            assertEq(court.eligibleJurors(jobHash, challenger), 4, "everyone but the challenger");
            address[] memory jurors = _draw(jobHash);
            assertTrue(!_isIn(jurors, challenger), "not on its own jury");
            assertTrue(!court.getBallot(jobHash, challenger).seated, "never seated");
        }
    }

    /// A node that also stakes as a verifier cannot judge a job it served.
    function testRouteNodeNeverJudgesItsOwnJob() public {
        _network();
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(nodes[i]);
            court.stakeVerifier(800e18);
        }
        for (uint256 i = 0; i < 5; ++i) {
            bytes32 jobHash = _submit(_job(client, i + 1), SERVED);
            _open(jobHash, 1, FAULT, verifiers[i], BOND);
            address[] memory jurors = _draw(jobHash);
            for (uint256 n = 0; n < 3; ++n) {
                assertTrue(!_isIn(jurors, nodes[n]), "no route node on the jury");
            }
        }
    }

    // --------------------------------------------------------------- over-charge

    /// A submitter that charges for more positions than its committed receipts prove is
    /// caught by anyone holding the receipts.
    function testOverchargingSubmitterIsCaught() public {
        _network();
        IJobMarket.Job memory job = _job(client, 1);
        bytes32 jobHash = market.hashJob(job);
        bytes memory blob = Receipts.chain(jobHash, 3, Receipts.steps(5, 3)).encode(); // 8 positions
        bytes32 commitment = Receipts.commitment(blob);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 64, commitment); // charges for the whole budget

        vm.prank(verifiers[2]);
        market.proveOvercharge(jobHash, blob);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "overturned");
        assertEq(market.escrowOf(client), 100e18, "client pays nothing");
        assertEq(registry.getNode(nodes[0]).stake, 50e18, "the cheat slashed");
        assertTrue(token.balanceOf(verifiers[2]) > 900e18, "the prover rewarded");
        _assertConserved(_actors());
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

