// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {DisputeCourt} from "../DisputeCourt.sol";
import {IDisputeCourt} from "../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {DisputeFixture} from "./utils/DisputeFixture.sol";

/// @notice Every step of a dispute, each error with its arguments and each event.
contract DisputeCourtTest is DisputeFixture {
    // -------------------------------------------------------------- construction

    function _expectInvalid(IDisputeCourt.CourtParams memory p) internal {
        vm.expectRevert(IDisputeCourt.InvalidParams.selector);
        new DisputeCourt(IERC20(address(token)), market, p);
    }

    function testConstructorRejectsInconsistentParams() public {
        IDisputeCourt.CourtParams memory p = _courtParams();
        p.jurySize = 0;
        _expectInvalid(p);

        p = _courtParams();
        p.jurorShareBps = 10_001;
        _expectInvalid(p);

        p = _courtParams();
        p.minBond = 0;
        _expectInvalid(p);

        p = _courtParams();
        p.jurorPenalty = p.minVerifierStake + 1; // a minimum stake must cover one penalty
        _expectInvalid(p);

        p = _courtParams();
        (p.minVerifierStake, p.jurorPenalty) = (0, 0);
        _expectInvalid(p);

        p = _courtParams();
        p.commitWindow = p.responseWindow; // the hop must answer before the votes close
        _expectInvalid(p);

        p = _courtParams();
        p.revealWindow = 0;
        _expectInvalid(p);

        // The bond must outweigh the largest bounty (20% of a 50 SHARE slash).
        p = _courtParams();
        p.minBond = 10e18;
        _expectInvalid(p);
        p.minBond = 10e18 + 1;
        new DisputeCourt(IERC20(address(token)), market, p);

        vm.expectRevert(IDisputeCourt.InvalidParams.selector);
        new DisputeCourt(IERC20(address(0xdead)), market, _courtParams());

        // Two full rounds after the challenge window, and the window a rejection opens again,
        // must end before a node could leave.
        p = _courtParams();
        (p.commitWindow, p.revealWindow) = (82 hours, 1 hours); // 2 * 1 h + 2 * 83 h == 7 days
        _expectInvalid(p);
        p.commitWindow -= 1;
        DisputeCourt ok = new DisputeCourt(IERC20(address(token)), market, p);
        assertEq(ok.params().commitWindow, 82 hours - 1, "one second shorter is accepted");
    }

    function testViewsReportTheSetup() public view {
        IDisputeCourt.CourtParams memory p = court.params();
        assertEq(p.minBond, BOND, "minBond");
        assertEq(p.jurySize, 3, "jurySize");
        assertEq(p.jurorPenalty, PENALTY, "jurorPenalty");
        assertEq(p.jurorShareBps, 5_000, "jurorShareBps");
        assertEq(p.responseWindow, 30 minutes, "responseWindow");
        assertEq(address(court.token()), address(token), "token");
        assertEq(court.market(), address(market), "market");
        assertEq(market.court(), address(court), "the market's court");
        assertEq(court.verifiers().length, 5, "five verifiers");
        assertEq(court.totalVerifierStake(), 500e18, "their stakes");
        assertEq(court.totalHeld(), 0, "nothing held");
        assertTrue(court.getDispute(bytes32(uint256(1))).phase == IDisputeCourt.Phase.None, "no dispute");
    }

    // ---------------------------------------------------------------------- open

    function testOpenDisputeRecordsItAndHoldsTheBond() public {
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobDisputed(jobHash, 2);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeOpened(
            jobHash, verifiers[3], nodes[2], 2, WITHHOLDING, 25e18, EVIDENCE, uint64(block.number + 1)
        );
        _open(jobHash, 2, WITHHOLDING, verifiers[3], 25e18);

        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        assertTrue(d.phase == IDisputeCourt.Phase.Drawing, "drawing");
        assertTrue(d.kind == WITHHOLDING, "kind");
        assertEq(d.hop, 2, "hop");
        assertEq(d.round, 0, "round");
        assertEq(d.drawBlock, block.number + 1, "drawn from the next block");
        assertEq(d.openedAt, block.timestamp, "openedAt");
        assertEq(d.challenger, verifiers[3], "challenger");
        assertEq(d.accused, nodes[2], "accused");
        assertEq(d.bond, 25e18, "bond");
        assertEq(d.evidence, EVIDENCE, "evidence");
        assertEq(d.jurors.length, 0, "no jury yet");
        assertEq(court.totalHeld(), 25e18, "bond held");
        assertEq(token.balanceOf(verifiers[3]), 1_000e18 - 100e18 - 25e18, "bond paid");
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Disputed, "job frozen");
        _assertConserved(_actors());
    }

    // ---------------------------------------------------------------------- draw

    function testDrawWaitsForTheDrawBlock() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        uint256 drawBlock = block.number + 1;
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.DrawNotReady.selector, jobHash, drawBlock, block.number));
        court.drawJury(jobHash);
        vm.roll(drawBlock);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.DrawNotReady.selector, jobHash, drawBlock, drawBlock));
        court.drawJury(jobHash);

        vm.roll(drawBlock + 1);
        uint64 commitEndsAt = uint64(block.timestamp + 1 hours);
        uint64 revealEndsAt = commitEndsAt + 1 hours;
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectEmit(true, false, true, true, address(court));
            emit IDisputeCourt.JurorDrawn(jobHash, address(0), 0, commitEndsAt, revealEndsAt);
        }
        vm.prank(other); // anyone may draw
        court.drawJury(jobHash);

        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        assertTrue(d.phase == IDisputeCourt.Phase.Voting, "voting");
        assertEq(d.commitEndsAt, commitEndsAt, "commitEndsAt");
        assertEq(d.revealEndsAt, revealEndsAt, "revealEndsAt");
        assertEq(d.jurors.length, 3, "a full jury");
        for (uint256 i = 0; i < 3; ++i) {
            IDisputeCourt.Ballot memory b = court.getBallot(jobHash, d.jurors[i]);
            assertTrue(b.seated && !b.revealed && b.commitment == bytes32(0), "fresh ballot");
            assertEq(court.getVerifier(d.jurors[i]).locked, PENALTY, "penalty locked");
        }

        vm.expectRevert(
            abi.encodeWithSelector(IDisputeCourt.WrongPhase.selector, jobHash, IDisputeCourt.Phase.Voting)
        );
        court.drawJury(jobHash);
    }

    function testCallsOnAJobWithoutDisputeRevert() public {
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        bytes memory err = abi.encodeWithSelector(IDisputeCourt.NoDispute.selector, jobHash);
        vm.expectRevert(err);
        court.drawJury(jobHash);
        vm.expectRevert(err);
        vm.prank(verifiers[1]);
        court.commitVote(jobHash, bytes32(uint256(1)));
        vm.expectRevert(err);
        vm.prank(verifiers[1]);
        court.revealVote(jobHash, true, bytes32(0));
        vm.expectRevert(err);
        court.resolve(jobHash);
    }

    function testDrawIsDeferredOnceTheDrawBlockIsOutOfReach() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        uint64 drawBlock = court.getDispute(jobHash).drawBlock;

        vm.roll(drawBlock + 257);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DrawDeferred(jobHash, uint64(block.number + 1));
        court.drawJury(jobHash);
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        assertTrue(d.phase == IDisputeCourt.Phase.Drawing, "still drawing");
        assertEq(d.drawBlock, block.number + 1, "a block after the call draws");
        assertEq(d.jurors.length, 0, "nobody seated");

        vm.expectRevert(
            abi.encodeWithSelector(IDisputeCourt.DrawNotReady.selector, jobHash, block.number + 1, block.number)
        );
        court.drawJury(jobHash);

        // 256 blocks later the hash is still in reach.
        vm.roll(block.number + 1 + 256);
        court.drawJury(jobHash);
        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Voting, "drawn");
        assertEq(_jurors(jobHash).length, 3, "full jury");
    }

    // ---------------------------------------------------------------------- commit

    function testCommitVoteRecordsAHiddenVote() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        bytes32 commitment = _commitment(jobHash, jurors[0], true);
        assertEq(
            commitment,
            keccak256(abi.encode(jobHash, uint8(0), jurors[0], true, _salt(jobHash, jurors[0]))),
            "commitment layout"
        );
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.VoteCommitted(jobHash, jurors[0]);
        vm.prank(jurors[0]);
        court.commitVote(jobHash, commitment);
        assertEq(court.getBallot(jobHash, jurors[0]).commitment, commitment, "stored");
        assertEq(court.getDispute(jobHash).committed, 1, "counted");
    }

    function testCommitVoteErrors() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        bytes32 c = bytes32(uint256(1));

        vm.expectRevert(
            abi.encodeWithSelector(IDisputeCourt.WrongPhase.selector, jobHash, IDisputeCourt.Phase.Drawing)
        );
        vm.prank(verifiers[1]);
        court.commitVote(jobHash, c);

        address[] memory jurors = _draw(jobHash);
        address spare = _spare(verifiers[0], jurors);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotJuror.selector, jobHash, spare));
        vm.prank(spare);
        court.commitVote(jobHash, c);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotJuror.selector, jobHash, verifiers[0]));
        vm.prank(verifiers[0]);
        court.commitVote(jobHash, c);

        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.EmptyCommitment.selector, jobHash, jurors[0]));
        vm.prank(jurors[0]);
        court.commitVote(jobHash, bytes32(0));
        assertEq(court.getDispute(jobHash).committed, 0, "an empty commitment is not counted");

        vm.prank(jurors[0]);
        court.commitVote(jobHash, c);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.AlreadyCommitted.selector, jobHash, jurors[0]));
        vm.prank(jurors[0]);
        court.commitVote(jobHash, bytes32(uint256(2)));

        uint64 commitEndsAt = court.getDispute(jobHash).commitEndsAt;
        vm.warp(commitEndsAt);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.CommitClosed.selector, jobHash, commitEndsAt));
        vm.prank(jurors[1]);
        court.commitVote(jobHash, c);
    }

    // ---------------------------------------------------------------------- reveal

    function testRevealsOpenWhenCommitsCloseOrEveryoneCommitted() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        uint64 commitEndsAt = court.getDispute(jobHash).commitEndsAt;
        _commit(jobHash, jurors[0], true);
        _commit(jobHash, jurors[1], false);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.RevealNotOpen.selector, jobHash, commitEndsAt));
        _reveal(jobHash, jurors[0], true);

        _commit(jobHash, jurors[2], true);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.VoteRevealed(jobHash, jurors[0], true);
        _reveal(jobHash, jurors[0], true); // every juror committed: reveals open early
        IDisputeCourt.Ballot memory b = court.getBallot(jobHash, jurors[0]);
        assertTrue(b.revealed && b.uphold, "revealed uphold");
        assertEq(court.getDispute(jobHash).revealed, 1, "counted");
        assertEq(court.getDispute(jobHash).upholdVotes, 1, "uphold counted");
    }

    function testRevealsOpenAtTheEndOfCommitsWithoutEveryone() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        uint64 commitEndsAt = court.getDispute(jobHash).commitEndsAt;
        _commit(jobHash, jurors[0], false);
        vm.warp(commitEndsAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.RevealNotOpen.selector, jobHash, commitEndsAt));
        _reveal(jobHash, jurors[0], false);
        vm.warp(commitEndsAt);
        _reveal(jobHash, jurors[0], false);
        assertEq(court.getDispute(jobHash).revealed, 1, "revealed at the end of commits");
        assertEq(court.getDispute(jobHash).upholdVotes, 0, "a reject vote");
    }

    function testRevealVoteErrors() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        _commit(jobHash, jurors[0], true);
        _commit(jobHash, jurors[1], false);
        vm.warp(d.commitEndsAt);

        address spare = _spare(verifiers[0], jurors);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotJuror.selector, jobHash, spare));
        vm.prank(spare);
        court.revealVote(jobHash, true, bytes32(0));

        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotCommitted.selector, jobHash, jurors[2]));
        _reveal(jobHash, jurors[2], true);

        bytes memory mismatch = abi.encodeWithSelector(IDisputeCourt.CommitmentMismatch.selector, jobHash, jurors[0]);
        vm.expectRevert(mismatch);
        _reveal(jobHash, jurors[0], false); // the other vote
        vm.expectRevert(mismatch);
        vm.prank(jurors[0]);
        court.revealVote(jobHash, true, keccak256("another salt"));

        _reveal(jobHash, jurors[0], true);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.AlreadyRevealed.selector, jobHash, jurors[0]));
        _reveal(jobHash, jurors[0], true);

        vm.warp(d.revealEndsAt);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.RevealClosed.selector, jobHash, d.revealEndsAt));
        _reveal(jobHash, jurors[1], false);
    }

    // ---------------------------------------------------------------------- resolve

    function testResolveWaitsForTheRevealsOrTheirEnd() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeCourt.WrongPhase.selector, jobHash, IDisputeCourt.Phase.Drawing)
        );
        court.resolve(jobHash);

        address[] memory jurors = _draw(jobHash);
        uint64 revealEndsAt = court.getDispute(jobHash).revealEndsAt;
        bytes memory notYet = abi.encodeWithSelector(IDisputeCourt.NotResolvable.selector, jobHash, revealEndsAt);
        vm.expectRevert(notYet);
        court.resolve(jobHash);
        for (uint256 i = 0; i < 3; ++i) {
            _commit(jobHash, jurors[i], false);
        }
        _reveal(jobHash, jurors[0], false);
        _reveal(jobHash, jurors[1], false);
        vm.warp(revealEndsAt - 1);
        vm.expectRevert(notYet);
        court.resolve(jobHash);

        _reveal(jobHash, jurors[2], false);
        vm.prank(other); // anyone may resolve, early once every juror revealed
        court.resolve(jobHash);
        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Rejected, "rejected");
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeCourt.WrongPhase.selector, jobHash, IDisputeCourt.Phase.Rejected)
        );
        court.resolve(jobHash);
    }

    function testResolveAfterTheRevealWindowCountsWhatWasRevealed() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        for (uint256 i = 0; i < 3; ++i) {
            _commit(jobHash, jurors[i], true);
        }
        _reveal(jobHash, jurors[0], true);
        _reveal(jobHash, jurors[1], true);
        _afterReveals(jobHash);

        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, jurors[2], PENALTY, false);
        court.resolve(jobHash);
        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Upheld, "two of three reveals decide");
        assertEq(court.verifierStake(jurors[2]), 90e18, "the silent juror lost its penalty");
        assertEq(court.getVerifier(jurors[2]).locked, 0, "and nothing stays locked");
    }

    function testMajorityUpholdsAndTheDissenterIsPenalised() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        _vote(jobHash, _votes(true, false, true));
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, jurors[1], PENALTY, true);
        court.resolve(jobHash);
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        assertTrue(d.phase == IDisputeCourt.Phase.Upheld, "upheld 2-1");
        assertEq(d.upholdVotes, 2, "two uphold votes");
        assertEq(d.penalties, PENALTY, "one penalty taken");
        assertEq(court.verifierStake(jurors[1]), 90e18, "dissenter penalised");
        assertEq(court.verifierStake(jurors[0]), 100e18, "majority keeps its stake");
        _assertConserved(_actors());
    }

    function testTieIsRejected() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        _commit(jobHash, jurors[0], true);
        _commit(jobHash, jurors[1], false);
        _commit(jobHash, jurors[2], true);
        vm.warp(court.getDispute(jobHash).commitEndsAt);
        _reveal(jobHash, jurors[0], true);
        _reveal(jobHash, jurors[1], false);
        _afterReveals(jobHash);

        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, jurors[0], PENALTY, true);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, jurors[2], PENALTY, false);
        // The pot: half the bond, plus two penalties, to the one coherent juror.
        uint256 toJurors = BOND / 2 + 2 * PENALTY;
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeResolved(jobHash, false, 1, 1, 0, BOND - BOND / 2);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPaid(jobHash, jurors[1], toJurors);
        court.resolve(jobHash);
        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Rejected, "a tie rejects");
        assertEq(registry.getNode(nodes[1]).stake, MIN_STAKE, "no slash on a tie");
        assertEq(token.balanceOf(jurors[1]), 900e18 + toJurors, "the coherent juror takes the pot");
        _assertConserved(_actors());
    }

    // --------------------------------------------------------- failed rounds, redraw

    function testTooFewRevealsRedrawsOnceThenRejects() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory first = _draw(jobHash);
        for (uint256 i = 0; i < 3; ++i) {
            _commit(jobHash, first[i], true);
        }
        _reveal(jobHash, first[0], true); // one reveal of three: no majority of the jury
        _afterReveals(jobHash);

        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, first[1], PENALTY, false);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, first[2], PENALTY, false);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.RoundFailed(jobHash, 0, 1);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DrawDeferred(jobHash, uint64(block.number + 1));
        court.resolve(jobHash);

        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        assertTrue(d.phase == IDisputeCourt.Phase.Drawing, "back to drawing");
        assertEq(d.round, 1, "second round");
        assertEq(d.jurors.length, 0, "jury dismissed");
        assertEq(d.committed + d.revealed + d.upholdVotes, 0, "counts reset");
        assertEq(d.penalties, 2 * PENALTY, "penalties carried over");
        assertEq(court.totalHeld(), BOND + 2 * PENALTY, "held: bond and penalties");
        assertEq(court.getVerifier(first[0]).locked, 0, "the revealing juror is released");
        assertEq(court.verifierStake(first[0]), 100e18, "unharmed");
        assertEq(token.balanceOf(first[0]), 900e18, "but unpaid");
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Disputed, "job still frozen");

        address spare = _spare(verifiers[0], first);
        address[] memory second = _draw(jobHash);
        assertEq(second.length, 1, "only the spare verifier is left to sit");
        assertEq(second[0], spare, "a new jury");
        assertTrue(court.getBallot(jobHash, spare).seated, "seated");

        // A juror of the failed round cannot vote in the new one.
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotJuror.selector, jobHash, first[0]));
        vm.prank(first[0]);
        court.commitVote(jobHash, bytes32(uint256(1)));

        _afterReveals(jobHash);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPenalized(jobHash, spare, PENALTY, false);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.RoundFailed(jobHash, 1, 0);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeResolved(jobHash, false, 0, 0, 0, BOND - BOND / 2);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.RewardsFunded(address(court), BOND / 2 + 3 * PENALTY, BOND / 2 + 3 * PENALTY);
        court.resolve(jobHash);

        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Rejected, "rejected after the redraw");
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Submitted, "job released");
        assertEq(token.balanceOf(nodes[1]), 900e18 + BOND - BOND / 2, "the accused gets the rest of the bond");
        assertEq(market.rewardPool(), BOND / 2 + 3 * PENALTY, "no coherent juror: the jurors' pot goes to the pool");
        assertEq(court.totalHeld(), 0, "nothing held");
        _assertConserved(_actors());
    }

    function testRedrawnJuryDecidesAndTakesTheEarlierPenalties() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory first = _draw(jobHash);
        _afterReveals(jobHash);
        court.resolve(jobHash); // nobody voted
        address[] memory second = _draw(jobHash);
        _vote(jobHash, _unanimous(1, true));
        court.resolve(jobHash);

        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Upheld, "one reveal of one seat decides");
        uint256 bounty = _courtBounty(50e18, 2 * 10 * 10 * PRICE);
        assertEq(
            token.balanceOf(second[0]), 900e18 + bounty / 2 + 3 * PENALTY, "the new juror: its share and the penalties"
        );
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(court.verifierStake(first[i]), 90e18, "silent first jurors penalised");
        }
        _assertConserved(_actors());
    }

    function testDisputeWithNoEligibleJurorStillEnds() public {
        // Every verifier but the challenger leaves.
        for (uint256 i = 1; i < 5; ++i) {
            vm.prank(verifiers[i]);
            court.requestVerifierUnstake();
        }
        bytes32 jobHash = _disputedJob(1, FAULT);
        assertEq(court.eligibleJurors(jobHash, verifiers[0]), 0, "nobody can sit");

        assertEq(_draw(jobHash).length, 0, "an empty jury");
        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Voting, "voting with no one");
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.RoundFailed(jobHash, 0, 0);
        court.resolve(jobHash); // nothing to wait for

        assertEq(_draw(jobHash).length, 0, "still empty");
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.RoundFailed(jobHash, 1, 0);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeResolved(jobHash, false, 0, 0, 0, BOND - BOND / 2);
        court.resolve(jobHash);

        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Rejected, "rejected");
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Submitted, "released");
        vm.warp(block.timestamp + 1 hours);
        market.finalize(jobHash);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Finalized, "paid");
        _assertConserved(_actors());
    }
}
