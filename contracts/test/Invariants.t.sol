// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDisputeCourt} from "../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";
import {MarketHandler} from "./utils/MarketHandler.sol";

/// @notice Invariants over random sequences of handler actions (see MarketHandler).
contract InvariantsTest is MarketFixture {
    MarketHandler internal handler;

    function setUp() public override {
        super.setUp();
        uint256[] memory keys = new uint256[](2);
        (keys[0], keys[1]) = (CLIENT_KEY, OTHER_KEY);
        address spare = address(uint160(0x1100));
        _fund(spare, 1_000e18);
        address[] memory ns = new address[](4);
        ns[3] = spare;
        address[] memory vs = new address[](5);
        for (uint256 i = 0; i < 3; ++i) {
            ns[i] = nodes[i];
        }
        for (uint256 i = 0; i < 5; ++i) {
            vs[i] = verifiers[i];
        }
        handler = new MarketHandler(token, registry, market, court, keys, ns, vs);
        // Start from a live network so that short sequences already reach jobs and disputes.
        _stakeNodes();
        vm.prank(spare);
        registry.stake(MIN_STAKE, _config(10, 20, PRICE));
        _stakeVerifiers();
        _deposit(client, 50e18);
        _deposit(other, 50e18);
    }

    /// @dev Read by the invariant fuzzer: only the handler is called.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariantEveryTokenIsInExactlyOnePlace() public view {
        address[] memory actors = handler.actors();
        uint256 wallets = 0;
        uint256 escrows = 0;
        uint256 nodeStakes = 0;
        uint256 verifierStakes = 0;
        for (uint256 i = 0; i < actors.length; ++i) {
            wallets += token.balanceOf(actors[i]);
            escrows += market.escrowOf(actors[i]);
            nodeStakes += registry.getNode(actors[i]).stake;
            verifierStakes += court.verifierStake(actors[i]);
        }
        assertEq(escrows, market.totalEscrow(), "escrows add up");
        assertEq(verifierStakes, court.totalVerifierStake(), "verifier stakes add up");
        assertEq(nodeStakes, token.balanceOf(address(registry)), "registry holds exactly the node stakes");
        assertEq(
            token.balanceOf(address(market)),
            escrows + market.totalLocked() + market.totalBatched() + market.rewardPool(),
            "market holds exactly escrows, locked payments, batched payments and the pool"
        );
        assertEq(
            token.balanceOf(address(court)),
            verifierStakes + court.totalHeld(),
            "court holds exactly the verifier stakes and what open disputes hold"
        );
        assertEq(
            wallets + token.balanceOf(address(registry)) + token.balanceOf(address(market))
                + token.balanceOf(address(court)),
            token.totalSupply(),
            "sum of all places == totalSupply"
        );
    }

    function invariantNoJobSettlesTwice() public view {
        assertTrue(!handler.settledTwice(), "a job settled twice");
        uint256 locked = 0;
        for (uint256 i = 0; i < handler.jobCount(); ++i) {
            bytes32 jobHash = handler.jobs(i);
            IJobMarket.JobStatus status = market.getJob(jobHash).status;
            if (status == IJobMarket.JobStatus.Submitted || status == IJobMarket.JobStatus.Disputed) {
                locked += market.getJob(jobHash).cost;
                assertEq(handler.settlements(jobHash), 0, "a pending job has not settled");
            } else {
                assertEq(handler.settlements(jobHash), 1, "settled job counted once");
            }
        }
        assertEq(locked, market.totalLocked(), "locked == cost of pending and disputed jobs");
    }

    /// A job is frozen exactly while its dispute is open; the court holds exactly the open
    /// disputes' bonds and penalties, and exactly a penalty per seated juror is locked.
    function invariantCourtHoldsExactlyWhatOpenDisputesNeed() public view {
        uint256 held = 0;
        uint256 seated = 0;
        for (uint256 i = 0; i < handler.disputeCount(); ++i) {
            bytes32 jobHash = handler.disputes(i);
            IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
            bool open = d.phase == IDisputeCourt.Phase.Drawing || d.phase == IDisputeCourt.Phase.Voting;
            assertTrue(
                open == (market.getJob(jobHash).status == IJobMarket.JobStatus.Disputed),
                "disputed iff the dispute is open"
            );
            if (open) held += d.bond + d.penalties;
            if (d.phase == IDisputeCourt.Phase.Voting) seated += d.jurors.length;
            if (d.phase == IDisputeCourt.Phase.Drawing) assertEq(d.jurors.length, 0, "no jury while drawing");
        }
        assertEq(held, court.totalHeld(), "totalHeld == open bonds and penalties");
        address[] memory vs = court.verifiers();
        uint256 locked = 0;
        for (uint256 i = 0; i < vs.length; ++i) {
            IDisputeCourt.VerifierInfo memory info = court.getVerifier(vs[i]);
            assertLe(info.locked, info.stake, "locked within the stake");
            locked += info.locked;
        }
        assertEq(locked, seated * court.params().jurorPenalty, "a penalty locked per seated juror");
    }

    function invariantSlashOnlyByUpheldDisputeOrProvenOvercharge() public view {
        assertTrue(!handler.unexplainedSlash(), "a node lost stake without an upheld dispute or an over-charge proof");
        assertTrue(!handler.falseOverchargeProof(), "an over-charge proof passed against an honest charge");
        assertTrue(!handler.slashAboveStake(), "a slash moved other tokens than the stake it took");
    }

    /// An amended job never costs its client more than the job it signed allows for every
    /// position served, plus the replacement's replay of the positions before it.
    function invariantAmendedJobsStayWithinTheCapAndTheReplay() public view {
        assertTrue(!handler.amendedOverCap(), "an amended job cost more than its cap plus the replay");
    }

    function invariantVerdictsFollowTheRevealedMajority() public view {
        assertTrue(!handler.wrongVerdict(), "a verdict other than the revealed majority's");
        assertTrue(!handler.wrongRevealAccepted(), "a reveal that does not open the commitment counted");
    }

    function invariantNoDisputeResolvesTwice() public view {
        assertTrue(!handler.resolvedTwice(), "a dispute resolved twice");
        for (uint256 i = 0; i < handler.disputeCount(); ++i) {
            bytes32 jobHash = handler.disputes(i);
            IDisputeCourt.Phase phase = court.getDispute(jobHash).phase;
            bool ended = phase == IDisputeCourt.Phase.Upheld || phase == IDisputeCourt.Phase.Rejected;
            assertEq(handler.resolutions(jobHash), ended ? 1 : 0, "an ended dispute resolved once");
        }
    }

    function invariantNothingLeavesBeforeItsDelay() public view {
        assertTrue(!handler.leftEarly(), "a stake or deposit left before its delay");
    }

    /// After every run: each dispute still open can be driven to its end by anyone, and then
    /// nothing is held, frozen or locked.
    function afterInvariant() public {
        for (uint256 i = 0; i < handler.disputeCount(); ++i) {
            bytes32 jobHash = handler.disputes(i);
            for (uint256 step = 0; step < 8; ++step) {
                IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
                if (d.phase == IDisputeCourt.Phase.Drawing) {
                    if (block.number <= d.drawBlock) vm.roll(d.drawBlock + 1);
                    court.drawJury(jobHash);
                } else if (d.phase == IDisputeCourt.Phase.Voting) {
                    if (block.timestamp < d.revealEndsAt) vm.warp(d.revealEndsAt);
                    court.resolve(jobHash);
                } else {
                    break;
                }
            }
            IDisputeCourt.Phase phase = court.getDispute(jobHash).phase;
            assertTrue(
                phase == IDisputeCourt.Phase.Upheld || phase == IDisputeCourt.Phase.Rejected, "every dispute ends"
            );
            assertTrue(market.getJob(jobHash).status != IJobMarket.JobStatus.Disputed, "no job stays frozen");
        }
        assertEq(court.totalHeld(), 0, "nothing held once every dispute ended");
        address[] memory vs = court.verifiers();
        for (uint256 i = 0; i < vs.length; ++i) {
            assertEq(court.getVerifier(vs[i]).locked, 0, "no stake locked once every dispute ended");
        }
        _assertConserved(handler.actors());
    }
}
