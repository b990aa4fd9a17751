// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBatchSettlement} from "../interfaces/IBatchSettlement.sol";
import {IDisputeCourt} from "../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {ContractWallet} from "./mocks/ContractWallet.sol";
import {vm} from "./utils/Vm.sol";
import {BatchFixture} from "./utils/BatchFixture.sol";

/// @notice Every way a poster can cheat a batch, each beside the proof that undoes it: the
/// cheated entry is refunded in full and the poster slashed, the rest of the batch untouched.
contract BatchAttacksTest is BatchFixture {
    uint32 internal constant TOKENS = 16;
    uint256 internal constant JOB_COST = TOKENS * 30 * PRICE;
    uint256 internal constant SLASH = 50e18;

    IBatchSettlement.BatchedJob[] internal honestJobs;

    function setUp() public override {
        super.setUp();
        _deposit(other, 100e18);
    }

    /// @dev A batch of `bad` (one job of `client` built by the test) beside an honest entry
    /// of `other`; returns the batch, the entries and the index of client's entry.
    function _postWith(IBatchSettlement.BatchedJob[] memory clientJobs)
        internal
        returns (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine)
    {
        IBatchSettlement.Entry memory bad = _entryOf(client, clientJobs);
        IBatchSettlement.Entry memory honest = _entryOf(other, _clientJobs(other, OTHER_KEY, 1, 2, TOKENS));
        entries = new IBatchSettlement.Entry[](2);
        mine = client < other ? 0 : 1;
        (entries[mine], entries[1 - mine]) = (bad, honest);
        id = _post(entries);
    }

    function _single(IBatchSettlement.BatchedJob memory bj)
        internal
        pure
        returns (IBatchSettlement.BatchedJob[] memory list)
    {
        list = new IBatchSettlement.BatchedJob[](1);
        list[0] = bj;
    }

    /// @dev Proves `bj` (leaf 0 of the client's one-job entry) bad as verifier 0, and checks
    /// the refund, the slash, the bounty, and that the honest entry is still paid in full.
    function _proveAndCheck(IBatchSettlement.BatchedJob memory bj, IBatchSettlement.Fault fault) internal {
        uint256 escrowBefore = market.escrowOf(client);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(_single(bj));
        uint256 debit = _costOf(entries[mine]);
        uint256 stakeBefore = registry.getNode(nodes[2]).stake;
        uint256 proverBefore = token.balanceOf(verifiers[0]);

        IBatchSettlement.EntryRef memory ref = _ref(id, entries, mine);
        vm.expectEmit(true, true, true, true, address(batches));
        emit IBatchSettlement.EntryVoided(id, mine, client, fault, debit, SLASH);
        vm.prank(verifiers[0]);
        batches.proveBadLeaf(ref, bj, new bytes32[](0));

        assertEq(market.escrowOf(client), escrowBefore, "the cheated client is refunded in full");
        assertEq(registry.getNode(nodes[2]).stake, stakeBefore - SLASH, "the poster is slashed");
        assertEq(token.balanceOf(verifiers[0]) - proverBefore, SLASH * 2_000 / 10_000, "the prover's bounty");

        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.EntryNotLive.selector, id, mine));
        vm.prank(verifiers[1]);
        batches.proveBadLeaf(ref, bj, new bytes32[](0));

        vm.warp(block.timestamp + 1 hours);
        uint256 before = token.balanceOf(nodes[0]);
        batches.finalizeBatch(id, _payout(entries));
        // The slash's rest went to the reward pool, which rewards the honest entry's work.
        uint256 reward = 2 * (1e15 * uint256(TOKENS) * 10 / 30);
        assertEq(token.balanceOf(nodes[0]) - before, 2 * TOKENS * 10 * PRICE + reward, "the honest entry is paid");
        _assertConserved(_actors());
    }

    // --------------------------------------------------------------- bad leaves

    function testPocPosterForgesAClientsSignature() public {
        IBatchSettlement.BatchedJob memory bj = _batched(client, CLIENT_KEY, 1, 0, TOKENS);
        bj.signature = _sign(market, bj.job, OTHER_KEY);
        assertTrue(batches.leafFault(bj, client, nodes[2], uint64(block.timestamp)) == IBatchSettlement.Fault.BadSignature, "forged");
        _proveAndCheck(bj, IBatchSettlement.Fault.BadSignature);
    }

    function testPocPosterChargesMoreTokensThanTheJobAllows() public {
        IBatchSettlement.BatchedJob memory bj = _batched(client, CLIENT_KEY, 1, 0, 65);
        _proveAndCheck(bj, IBatchSettlement.Fault.BadTokens);
    }

    function testPocPosterChargesAPriceAboveTheCap() public {
        IBatchSettlement.BatchedJob memory bj = _batched(client, CLIENT_KEY, 1, 0, TOKENS);
        bj.prices[1] = PRICE + 1;
        _proveAndCheck(bj, IBatchSettlement.Fault.BadPrices);
    }

    function testPocPosterPostsAnExpiredJob() public {
        IBatchSettlement.BatchedJob memory bj = _batched(client, CLIENT_KEY, 1, 0, TOKENS);
        vm.warp(bj.job.deadline + 1);
        _proveAndCheck(bj, IBatchSettlement.Fault.Expired);
    }

    function testPocPosterBillsAJobItWasNotARouteNodeOf() public {
        IBatchSettlement.BatchedJob memory bj = _batched(client, CLIENT_KEY, 1, 0, TOKENS);
        bj.job.route[2] = nodes[1]; // poster nodes[2] left out of the route
        bj.signature = _sign(market, bj.job, CLIENT_KEY);
        _proveAndCheck(bj, IBatchSettlement.Fault.PosterNotInRoute);
    }

    /// @notice A contract wallet could make a signature it once gave invalid, void a batch that
    /// paid for honest work, and take the bounty: batches accept only plain ECDSA
    /// signatures (nodes send a contract wallet's jobs through `submitResult`).
    function testPocContractWalletSignaturesDoNotCountInBatches() public {
        ContractWallet wallet = new ContractWallet(client);
        IBatchSettlement.BatchedJob memory bj = _batched(address(wallet), CLIENT_KEY, 1, 0, TOKENS);
        assertTrue(
            batches.leafFault(bj, address(wallet), nodes[2], uint64(block.timestamp))
                == IBatchSettlement.Fault.BadSignature,
            "an ERC-1271 signature is not a batch signature"
        );
    }

    /// @notice A high-s twin of a valid signature recovers the same signer with `ecrecover`;
    /// a client that handed one over could later prove its own job "forged". Batches count
    /// only low-s signatures, as nodes check before accepting a batched job.
    function testPocMalleatedSignatureIsNotSound() public view {
        IBatchSettlement.BatchedJob memory bj = _batched(client, CLIENT_KEY, 1, 0, TOKENS);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(CLIENT_KEY, market.hashJob(bj.job));
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bj.signature = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        assertEq(ecrecover(market.hashJob(bj.job), v == 27 ? 28 : 27, r, bytes32(n - uint256(s))), client, "twin");
        assertTrue(
            batches.leafFault(bj, client, nodes[2], uint64(block.timestamp)) == IBatchSettlement.Fault.BadSignature,
            "high-s is refused"
        );
    }

    function testPocPosterCreditsLessThanAJobOwesANode() public {
        IBatchSettlement.BatchedJob[] memory jobs = _single(_batched(client, CLIENT_KEY, 1, 0, TOKENS));
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = (0, new IBatchSettlement.Entry[](0), 0);
        IBatchSettlement.Entry memory e = _entryOf(client, jobs);
        // Moves pay from node 0 to itself: the total debit is right, the split is not.
        e.credits[0].amount -= 1e12;
        e.credits[2].amount += 1e12;
        entries = _one(e);
        id = _post(entries);
        vm.prank(verifiers[0]);
        batches.proveBadLeaf(_ref(id, entries, mine), jobs[0], new bytes32[](0));
        assertTrue(batches.getBatch(id).voided == 1, "voided: a hop is not credited its pay");
        _assertConserved(_actors());
    }

    function testASoundLeafProvesNothing() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 3, TOKENS);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(jobs);
        bytes32[] memory proof = _proofOf(_leaves(jobs), 2);
        bytes32 jobHash = market.hashJob(jobs[2].job);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.LeafSound.selector, jobHash));
        batches.proveBadLeaf(_ref(id, entries, mine), jobs[2], proof);
    }

    function testProofsCloseWithTheWindow() public {
        IBatchSettlement.BatchedJob memory bj = _batched(client, CLIENT_KEY, 1, 0, 65);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(_single(bj));
        uint256 endsAt = batches.getBatch(id).postedAt + 1 hours;
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.WindowClosed.selector, id, endsAt));
        batches.proveBadLeaf(_ref(id, entries, mine), bj, new bytes32[](0));
    }

    // ------------------------------------------------------------------- replays

    function testPocSameJobTwiceInOneEntry() public {
        IBatchSettlement.BatchedJob memory a = _batched(client, CLIENT_KEY, 1, 0, TOKENS);
        IBatchSettlement.BatchedJob memory b = _batched(client, CLIENT_KEY, 1, 1, TOKENS);
        IBatchSettlement.BatchedJob[] memory jobs = new IBatchSettlement.BatchedJob[](2);
        (jobs[0], jobs[1]) = (a, b);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(jobs);
        bytes32[] memory leaves = _leaves(jobs);
        uint256 escrowAfterPost = market.escrowOf(client);
        IBatchSettlement.Leaf memory la = _leafOf(a);
        IBatchSettlement.Leaf memory lb = _leafOf(b);
        vm.prank(verifiers[0]);
        batches.proveReplay(
            _ref(id, entries, mine), la, _proofOf(leaves, 0), _ref(id, entries, mine), lb, _proofOf(leaves, 1)
        );
        assertEq(market.escrowOf(client), escrowAfterPost + 2 * JOB_COST, "the entry is refunded");
        _assertConserved(_actors());
    }

    function testPocSameLeafProvesNoReplay() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 2, TOKENS);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(jobs);
        bytes32[] memory proof = _proofOf(_leaves(jobs), 0);
        IBatchSettlement.EntryRef memory ref = _ref(id, entries, mine);
        IBatchSettlement.Leaf memory leaf = _leafOf(jobs[0]);
        vm.expectRevert(IBatchSettlement.NotAReplay.selector);
        batches.proveReplay(ref, leaf, proof, ref, leaf, proof);
    }

    function testPocPosterPostsTheSameJobsInTwoBatches() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 2, TOKENS);
        IBatchSettlement.Entry[] memory entries = _one(_entryOf(client, jobs));
        uint256 first = _post(entries);
        uint256 second = _post(entries);
        assertEq(market.escrowOf(client), 100e18 - 4 * JOB_COST, "both debited");
        bytes32[] memory proof = _proofOf(_leaves(jobs), 1);
        IBatchSettlement.Leaf memory leaf = _leafOf(jobs[1]);
        vm.prank(verifiers[0]);
        batches.proveReplay(_ref(first, entries, 0), leaf, proof, _ref(second, entries, 0), leaf, proof);
        assertEq(market.escrowOf(client), 100e18 - 2 * JOB_COST, "paid once");
        vm.warp(block.timestamp + 1 hours);
        batches.finalizeBatch(first, _payout(entries));
        batches.finalizeBatch(second, _payout(entries));
        _assertConserved(_actors());
    }

    function testPocBatchedJobAlsoSubmittedOnItsOwn() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 2, TOKENS);
        vm.prank(nodes[2]);
        market.submitResult(jobs[0].job, jobs[0].signature, TOKENS, COMMITMENT);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(jobs);
        IBatchSettlement.EntryRef memory none = _noRef();
        IBatchSettlement.Leaf memory leaf = _leafOf(jobs[0]);
        bytes32[] memory proof = _proofOf(_leaves(jobs), 0);
        vm.prank(verifiers[0]);
        batches.proveReplay(none, leaf, new bytes32[](0), _ref(id, entries, mine), leaf, proof);
        assertTrue(batches.getBatch(id).voided == 1 << mine, "the batched copy is voided");
        _assertConserved(_actors());
    }

    // ------------------------------------------------------------------- demands

    function testADemandedSoundEntryIsShownAndPaysTheBondToThePoster() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 5, TOKENS);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(jobs);
        vm.warp(block.timestamp + 45 minutes);
        vm.prank(other);
        batches.demandEntry(id, mine);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.AlreadyDemanded.selector, id, mine));
        vm.prank(other);
        batches.demandEntry(id, mine);

        vm.warp(block.timestamp + 15 minutes);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.DemandsOpen.selector, id, uint16(1)));
        batches.finalizeBatch(id, _payout(entries));

        uint256 posterBefore = token.balanceOf(nodes[2]);
        vm.prank(nodes[2]);
        batches.showEntry(_ref(id, entries, mine), jobs);
        assertEq(token.balanceOf(nodes[2]) - posterBefore, 5e18, "the bond pays the poster's gas");
        batches.finalizeBatch(id, _payout(entries));
        _assertConserved(_actors());
    }

    function testPocPosterWithholdsAnEntryItCannotShow() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 3, TOKENS);
        IBatchSettlement.Entry memory e = _entryOf(client, jobs);
        // Inflated credits: no set of leaves adds up to them, so no single leaf shows it.
        e.credits[2].amount += 1e15;
        IBatchSettlement.Entry[] memory entries = _one(e);
        uint256 id = _post(entries);
        vm.prank(other);
        batches.demandEntry(id, 0);
        IBatchSettlement.EntryRef memory ref = _ref(id, entries, 0);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.ShownMismatch.selector, id, uint16(0)));
        vm.prank(nodes[2]);
        batches.showEntry(ref, jobs);
        uint64 dueAt = batches.demandOf(id, 0).dueAt;
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.DemandNotDue.selector, id, uint16(0), dueAt));
        batches.forfeitEntry(ref);

        vm.warp(dueAt + 1);
        uint256 demanderBefore = token.balanceOf(other);
        batches.forfeitEntry(_ref(id, entries, 0));
        assertEq(market.escrowOf(client), 100e18, "refunded in full");
        assertEq(token.balanceOf(other) - demanderBefore, 5e18 + SLASH * 2_000 / 10_000, "bond back and bounty");
        // Nothing left to pay: finalizing pays nobody and leaves nothing behind.
        vm.warp(block.timestamp + 1 hours);
        batches.finalizeBatch(id, _payout(entries));
        assertEq(market.totalBatched(), 0, "empty");
        _assertConserved(_actors());
    }

    // ---------------------------------------------------------- lifted disputes

    /// @notice A batched job whose hop cheated is disputed on its own: it leaves the batch,
    /// the jury upholds, its client gets that job's cost back and the hop is slashed; the
    /// batch pays every other job as posted.
    function testAnUpheldDisputeOnABatchedJobTouchesOnlyThatJob() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 4, TOKENS);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(jobs);
        uint256 escrowAfterPost = market.escrowOf(client);
        bytes32 jobHash = market.hashJob(jobs[1].job);
        IBatchSettlement.EntryRef memory ref = _ref(id, entries, mine);
        bytes32[] memory proof = _proofOf(_leaves(jobs), 1);

        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.Unauthorized.selector, verifiers[0]));
        vm.prank(verifiers[0]);
        batches.lift(ref, jobs[1], proof);

        vm.prank(verifiers[0]);
        court.openBatchedDispute(ref, jobs[1], proof, 1, FAULT, EVIDENCE, BOND);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Disputed, "lifted and frozen");
        assertEq(batches.getBatch(id).outstanding, 6 * JOB_COST - JOB_COST, "the job left the batch");
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.AlreadyRecorded.selector, jobHash));
        vm.prank(address(court));
        batches.lift(ref, jobs[1], proof);

        _judge(jobHash, _unanimous(3, true));
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "upheld");
        assertEq(market.escrowOf(client), escrowAfterPost + JOB_COST, "that job is refunded");

        vm.warp(block.timestamp + 1 hours);
        uint256 before = token.balanceOf(nodes[0]);
        batches.finalizeBatch(id, _payout(entries));
        // The slash's rest went to the reward pool, which now rewards the batch's work too.
        uint256 reward = 5 * (1e15 * uint256(TOKENS) * 10 / 30);
        assertEq(token.balanceOf(nodes[0]) - before, 5 * TOKENS * 10 * PRICE + reward, "the five other jobs are paid");
        _assertConserved(_actors());
    }

    function testARejectedDisputeOnABatchedJobPaysItOnItsOwn() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 2, TOKENS);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(jobs);
        bytes32 jobHash = market.hashJob(jobs[0].job);
        IBatchSettlement.EntryRef memory ref = _ref(id, entries, mine);
        bytes32[] memory proof = _proofOf(_leaves(jobs), 0);
        vm.prank(verifiers[0]);
        court.openBatchedDispute(ref, jobs[0], proof, 1, FAULT, EVIDENCE, BOND);
        _judge(jobHash, _unanimous(3, false));
        vm.warp(block.timestamp + 2 hours);
        uint256 before = token.balanceOf(nodes[0]);
        batches.finalizeBatch(id, _payout(entries));
        market.finalize(jobHash);
        assertEq(token.balanceOf(nodes[0]) - before, 4 * TOKENS * 10 * PRICE, "every job paid once");
        _assertConserved(_actors());
    }

    function testALiftedJobIsNoReplayOfItsOwnLeaf() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 2, TOKENS);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(jobs);
        bytes32[] memory proof = _proofOf(_leaves(jobs), 0);
        IBatchSettlement.EntryRef memory ref = _ref(id, entries, mine);
        vm.prank(verifiers[0]);
        court.openBatchedDispute(ref, jobs[0], proof, 1, FAULT, EVIDENCE, BOND);
        IBatchSettlement.EntryRef memory none = _noRef();
        IBatchSettlement.Leaf memory leaf = _leafOf(jobs[0]);
        vm.expectRevert(IBatchSettlement.NotAReplay.selector);
        batches.proveReplay(none, leaf, proof, ref, leaf, proof);
    }

    function testAFaultyLeafCannotBeLiftedOnlyProven() public {
        IBatchSettlement.BatchedJob memory bj = _batched(client, CLIENT_KEY, 1, 0, 65);
        (uint256 id, IBatchSettlement.Entry[] memory entries, uint16 mine) = _postWith(_single(bj));
        bytes32 jobHash = market.hashJob(bj.job);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.LeafFaulty.selector, jobHash, IBatchSettlement.Fault.BadTokens));
        vm.prank(verifiers[0]);
        court.openBatchedDispute(_ref(id, entries, mine), bj, new bytes32[](0), 1, FAULT, EVIDENCE, BOND);
    }
}
