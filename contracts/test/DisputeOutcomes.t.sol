// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDisputeCourt} from "../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {DisputeFixture} from "./utils/DisputeFixture.sol";

/// @notice Who is paid what when a dispute ends, and what the job does meanwhile.
contract DisputeOutcomesTest is DisputeFixture {
    uint256 internal constant HOP_AMOUNT = SERVED * 10 * PRICE;
    uint256 internal constant COST = 3 * HOP_AMOUNT;

    function _wallets(address[] memory jurors) internal view returns (uint256[] memory w) {
        w = new uint256[](jurors.length);
        for (uint256 i = 0; i < jurors.length; ++i) {
            w[i] = token.balanceOf(jurors[i]);
        }
    }

    // -------------------------------------------------------------------- upheld

    function testUpheldPaysTheChallengerTheCoherentJurorsAndTheHonestHops() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _judge(jobHash, _votes(true, true, false));

        uint256 bounty = _courtBounty(50e18, 2 * HOP_AMOUNT);
        uint256 toJurors = bounty / 2 + PENALTY; // the share plus the dissenter's penalty
        assertEq(token.balanceOf(verifiers[0]), 900e18 + bounty - bounty / 2, "challenger: bond back and the rest");
        assertEq(token.balanceOf(jurors[0]), 900e18 + toJurors / 2, "coherent juror 0");
        assertEq(token.balanceOf(jurors[1]), 900e18 + toJurors / 2, "coherent juror 1");
        assertEq(token.balanceOf(jurors[2]), 900e18, "dissenter unpaid");
        assertEq(court.verifierStake(jurors[2]), 90e18, "and penalised");
        assertEq(registry.getNode(nodes[1]).stake, 50e18, "accused slashed");
        assertEq(market.escrowOf(client), 100e18, "client refunded the full cost");
        assertEq(token.balanceOf(nodes[0]), 900e18 + HOP_AMOUNT, "hop 0 compensated");
        assertEq(token.balanceOf(nodes[2]), 900e18 + HOP_AMOUNT, "hop 2 compensated");
        assertEq(token.balanceOf(nodes[1]), 900e18, "the accused is paid nothing");
        assertEq(market.rewardPool(), 50e18 - 2 * HOP_AMOUNT - bounty, "the slash's rest to the pool");
        assertEq(court.totalHeld(), 0, "nothing held");
        _assertConserved(_actors());
    }

    function testUpheldAgainstAHopWithNoStakeLeftReturnsTheBond() public {
        // nodes[1] over-charges twice; two proofs take its whole stake before the verdict.
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        bytes32 noReceipts = sha256("sharedllm/commitment/v1");
        bytes32[2] memory cheats;
        for (uint256 i = 0; i < 2; ++i) {
            IJobMarket.Job memory job = _job(client, 10 + i);
            bytes memory sig = _sign(market, job, CLIENT_KEY);
            vm.prank(nodes[1]);
            market.submitResult(job, sig, 1, noReceipts);
            cheats[i] = market.hashJob(job);
        }
        for (uint256 i = 0; i < 2; ++i) {
            vm.prank(other);
            market.proveOvercharge(cheats[i], "");
        }
        assertEq(registry.getNode(nodes[1]).stake, 0, "nothing left to slash");

        _open(jobHash, 1, FAULT, verifiers[0], BOND);
        address[] memory jurors = _draw(jobHash);
        _vote(jobHash, _unanimous(3, true));
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobChallenged(jobHash, nodes[1], 1, 0, 0);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeResolved(jobHash, true, 3, 0, BOND, 0);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.JurorPaid(jobHash, jurors[0], 0);
        court.resolve(jobHash);
        assertEq(token.balanceOf(verifiers[0]), 900e18, "challenger got its bond back");
        assertEq(market.escrowOf(client), 100e18, "client refunded");
        _assertConserved(_actors());
    }

    // ------------------------------------------------------------------ rejected

    function testRejectedFaultPaysTheAccused() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        _vote(jobHash, _unanimous(3, false));

        uint256 toJurors = BOND / 2;
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobReleased(jobHash);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeResolved(jobHash, false, 0, 3, 0, BOND - toJurors);
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectEmit(true, true, true, true, address(court));
            emit IDisputeCourt.JurorPaid(jobHash, jurors[i], toJurors / 3);
        }
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.RewardsFunded(address(court), toJurors % 3, toJurors % 3); // a third's dust
        court.resolve(jobHash);

        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Rejected, "rejected");
        assertEq(token.balanceOf(nodes[1]), 900e18 + BOND - toJurors, "the accused takes the rest of the bond");
        assertEq(registry.getNode(nodes[1]).stake, MIN_STAKE, "and keeps its stake");
        assertEq(token.balanceOf(verifiers[0]), 900e18 - BOND, "the challenger lost its bond");
        assertEq(market.escrowOf(client), 100e18 - COST, "the client still pays");
        _assertConserved(_actors());
    }

    function testRejectedWithholdingReturnsTheRestOfTheBondToTheChallenger() public {
        bytes32 jobHash = _disputedJob(1, WITHHOLDING);
        _draw(jobHash);
        _vote(jobHash, _unanimous(3, false));
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeResolved(jobHash, false, 0, 3, BOND - BOND / 2, 0);
        court.resolve(jobHash);
        assertEq(token.balanceOf(verifiers[0]), 900e18 - BOND / 2, "challenger loses only the jurors' share");
        assertEq(token.balanceOf(nodes[1]), 900e18, "the accused gets nothing");
        _assertConserved(_actors());
    }

    function testUpheldWithholdingSlashesLikeAFault() public {
        bytes32 jobHash = _disputedJob(1, WITHHOLDING);
        _judge(jobHash, _unanimous(3, true));
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "overturned");
        assertEq(registry.getNode(nodes[1]).stake, 50e18, "slashed");
        _assertConserved(_actors());
    }

    // --------------------------------------------------------- the job meanwhile

    function testFinalizeIsBlockedWhileDisputedAndAllowedAfterRelease() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        vm.warp(block.timestamp + 1 hours);
        bytes memory frozen = abi.encodeWithSelector(IJobMarket.JobUnderDispute.selector, jobHash);
        vm.expectRevert(frozen);
        market.finalize(jobHash);

        _draw(jobHash);
        vm.expectRevert(frozen);
        market.finalize(jobHash);
        _vote(jobHash, _unanimous(3, false));
        vm.expectRevert(frozen);
        market.finalize(jobHash);

        court.resolve(jobHash);
        // The release opens the challenge window again, for an over-charge proof.
        assertEq(market.getJob(jobHash).releasedAt, block.timestamp, "released now");
        bytes memory open = abi.encodeWithSelector(
            IJobMarket.ChallengeWindowOpen.selector, jobHash, block.timestamp + 1 hours
        );
        vm.expectRevert(open);
        market.finalize(jobHash);
        vm.warp(block.timestamp + 1 hours);
        market.finalize(jobHash);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Finalized, "paid after release");
        assertEq(token.balanceOf(nodes[0]), 900e18 + HOP_AMOUNT, "hop 0 paid");
        assertEq(token.balanceOf(nodes[1]), 900e18 + HOP_AMOUNT + BOND - BOND / 2, "hop 1 paid, and the bond's rest");
        assertEq(market.totalLocked(), 0, "unlocked");
        _assertConserved(_actors());
    }

    function testReleaseInsideTheWindowWaitsForTheWindowAndAllowsNoSecondDispute() public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        uint256 endsAt = block.timestamp + 1 hours;
        _judge(jobHash, _unanimous(3, false)); // blocks pass, no time does
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Submitted, "released");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobHash, endsAt));
        market.finalize(jobHash);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.AlreadyDisputed.selector, jobHash));
        _open(jobHash, 2, FAULT, verifiers[4], BOND);
        vm.warp(endsAt);
        market.finalize(jobHash);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Finalized, "paid once the window closed");
    }

    // ---------------------------------------------------------------------- fuzz

    /// Any bond at or above the floor comes out of the court in full, whatever the verdict.
    function testFuzzAnyBondConservesTokens(uint256 bond, bool upheld, bool withholding) public {
        bond = bound(bond, BOND, 800e18);
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        IDisputeCourt.Kind kind = withholding ? WITHHOLDING : FAULT;
        _open(jobHash, 1, kind, verifiers[0], bond);
        assertEq(court.totalHeld(), bond, "bond held");
        address[] memory jurors = _judge(jobHash, _unanimous(3, upheld));

        uint256 pot = upheld ? _courtBounty(50e18, 2 * HOP_AMOUNT) : bond;
        uint256 toJurors = pot * 5_000 / 10_000;
        uint256 rest = pot - toJurors;
        uint256 challengerGets = upheld ? bond + rest : (withholding ? rest : 0);
        uint256 accusedGets = !upheld && !withholding ? rest : 0;
        assertEq(token.balanceOf(verifiers[0]), 900e18 - bond + challengerGets, "challenger");
        assertEq(token.balanceOf(nodes[1]), 900e18 + accusedGets, "accused");
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(token.balanceOf(jurors[i]), 900e18 + toJurors / 3, "juror");
        }
        assertEq(registry.getNode(nodes[1]).stake, upheld ? 50e18 : MIN_STAKE, "slashed only when upheld");
        assertEq(court.totalHeld(), 0, "nothing held");
        _assertConserved(_actors());
    }

    struct Round {
        uint256 reveals;
        uint256 ups;
    }

    /// @dev Plays one round: each juror's three bits of `pattern` say what it does: bit 0..1
    /// 0 silent, 1 commits only, 2 reveals uphold, 3 reveals reject; bit 2 first tries to
    /// reveal the other vote.
    function _play(bytes32 jobHash, address[] memory jurors, uint256 pattern) internal returns (Round memory r) {
        for (uint256 i = 0; i < jurors.length; ++i) {
            uint256 act = (pattern >> (3 * i)) & 3;
            if (act >= 1) _commit(jobHash, jurors[i], act == 2);
        }
        vm.warp(court.getDispute(jobHash).commitEndsAt);
        for (uint256 i = 0; i < jurors.length; ++i) {
            uint256 act = (pattern >> (3 * i)) & 3;
            bool liar = (pattern >> (3 * i + 2)) & 1 == 1;
            if (liar && act >= 1) {
                vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.CommitmentMismatch.selector, jobHash, jurors[i]));
                _reveal(jobHash, jurors[i], act != 2);
            }
            if (act >= 2) {
                _reveal(jobHash, jurors[i], act == 2);
                ++r.reveals;
                if (act == 2) ++r.ups;
            }
        }
        _afterReveals(jobHash);
        court.resolve(jobHash);
    }

    /// Any pattern of commits, reveals and votes ends the dispute with every token accounted
    /// for, the outcome the revealed majority chose, and a slash only when upheld.
    function testFuzzAnyVotePatternEndsTheDispute(uint256 pattern) public {
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory first = _draw(jobHash);
        Round memory r0 = _play(jobHash, first, pattern);

        bool upheld;
        address[] memory second = new address[](0);
        Round memory r1;
        if (r0.reveals >= 2) {
            upheld = r0.ups * 2 > r0.reveals;
            assertEq(court.getDispute(jobHash).round, 0, "decided in the first round");
        } else {
            assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Drawing, "too few reveals: a new jury");
            second = _draw(jobHash);
            assertEq(second.length, 1, "the spare verifier");
            r1 = _play(jobHash, second, pattern >> 9);
            upheld = r1.reveals == 1 && r1.ups == 1;
        }

        IDisputeCourt.Phase phase = _phase(jobHash);
        assertTrue(phase == (upheld ? IDisputeCourt.Phase.Upheld : IDisputeCourt.Phase.Rejected), "majority decides");
        assertTrue(
            _status(jobHash) == (upheld ? IJobMarket.JobStatus.Challenged : IJobMarket.JobStatus.Submitted),
            "job overturned or released"
        );
        assertEq(registry.getNode(nodes[1]).stake, upheld ? 50e18 : MIN_STAKE, "slash only when upheld");

        // A juror keeps its whole stake iff it revealed the winning vote (or revealed in a
        // failed first round).
        bool decidedFirst = r0.reveals >= 2;
        for (uint256 i = 0; i < 3; ++i) {
            uint256 act = (pattern >> (3 * i)) & 3;
            bool kept = decidedFirst ? (act >= 2 && (act == 2) == upheld) : act >= 2;
            assertEq(court.verifierStake(first[i]), kept ? 100e18 : 90e18, "first jury's stakes");
            assertEq(court.getVerifier(first[i]).locked, 0, "first jury unlocked");
        }
        if (second.length == 1) {
            assertEq(court.verifierStake(second[0]), r1.reveals == 1 ? 100e18 : 90e18, "second juror's stake");
            assertEq(court.getVerifier(second[0]).locked, 0, "second juror unlocked");
        }
        assertEq(court.totalHeld(), 0, "nothing held");
        _assertConserved(_actors());
    }
}
