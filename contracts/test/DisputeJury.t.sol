// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDisputeCourt} from "../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {DisputeFixture} from "./utils/DisputeFixture.sol";

/// @notice Who sits on a jury: stake-weighted, without replacement, never the challenger,
/// a node of the job's route, the job's client or a juror of an earlier round, never a
/// verifier without a penalty's worth of free stake.
contract DisputeJuryTest is DisputeFixture {
    /// @dev The draw written out: seed from the draw block's hash, the job and the round;
    /// seat `s` takes the eligible verifier whose cumulative stake first exceeds
    /// `keccak(seed, s) % remaining`, then leaves the pool.
    function _expectedJury(bytes32 jobHash) internal view returns (address[] memory jury) {
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        uint256 seed = uint256(keccak256(abi.encode(blockhash(d.drawBlock), jobHash, d.round)));
        address[] memory list = court.verifiers();
        address[] memory hops = market.hopsOf(jobHash);
        address jobClient = market.getJob(jobHash).client;
        uint256[] memory weights = new uint256[](list.length);
        uint256 total = 0;
        for (uint256 i = 0; i < list.length; ++i) {
            IDisputeCourt.VerifierInfo memory info = court.getVerifier(list[i]);
            bool ok = list[i] != d.challenger && list[i] != jobClient && court.isVerifier(list[i])
                && !_isIn(hops, list[i])
                && !court.getBallot(jobHash, list[i]).seated && info.stake - info.locked >= PENALTY;
            if (ok) {
                weights[i] = info.stake;
                total += info.stake;
            }
        }
        address[] memory seated = new address[](court.params().jurySize);
        uint256 n = 0;
        for (uint256 s = 0; s < seated.length && total > 0; ++s) {
            uint256 target = uint256(keccak256(abi.encode(seed, s))) % total;
            uint256 acc = 0;
            for (uint256 i = 0; i < list.length; ++i) {
                acc += weights[i];
                if (target < acc) {
                    seated[n++] = list[i];
                    total -= weights[i];
                    weights[i] = 0;
                    break;
                }
            }
        }
        jury = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            jury[i] = seated[i];
        }
    }

    function _assertJury(bytes32 jobHash) internal returns (address[] memory jurors) {
        vm.roll(court.getDispute(jobHash).drawBlock + 1);
        address[] memory expected = _expectedJury(jobHash);
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        uint64 commitEndsAt = uint64(block.timestamp + 1 hours);
        for (uint256 i = 0; i < expected.length; ++i) {
            vm.expectEmit(true, true, true, true, address(court));
            emit IDisputeCourt.JurorDrawn(jobHash, expected[i], d.round, commitEndsAt, commitEndsAt + 1 hours);
        }
        court.drawJury(jobHash);
        jurors = _jurors(jobHash);
        assertEq(jurors.length, expected.length, "jury size");
        for (uint256 i = 0; i < jurors.length; ++i) {
            assertEq(jurors[i], expected[i], "the stake-weighted draw");
        }
    }

    function _stakeNodesAsVerifiers(uint256 amount) internal {
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(nodes[i]);
            court.stakeVerifier(amount);
        }
    }

    function testJuryIsTheStakeWeightedDrawFromTheDrawBlocksHash() public {
        vm.prank(verifiers[2]);
        court.stakeVerifier(400e18);
        vm.prank(verifiers[4]);
        court.stakeVerifier(150e18);
        for (uint256 i = 0; i < 6; ++i) {
            bytes32 jobHash = _submit(_job(client, i + 1), SERVED);
            _open(jobHash, uint8(i % 3), FAULT, verifiers[i % 5], BOND);
            _assertJury(jobHash);
        }
    }

    function testDrawExcludesTheChallengerAndTheJobsRouteNodes() public {
        _stakeNodesAsVerifiers(800e18); // the heaviest stakes, on the route of every job below
        for (uint256 c = 0; c < 5; ++c) {
            bytes32 jobHash = _submit(_job(client, c + 1), SERVED);
            _open(jobHash, 1, FAULT, verifiers[c], BOND);
            assertEq(court.eligibleJurors(jobHash, verifiers[c]), 4, "the four other verifiers");
            address[] memory jurors = _assertJury(jobHash);
            assertEq(jurors.length, 3, "full jury");
            assertTrue(!_isIn(jurors, verifiers[c]), "never the challenger");
            for (uint256 i = 0; i < 3; ++i) {
                assertTrue(!_isIn(jurors, nodes[i]), "never a route node");
            }
        }
    }

    function testTheJobsClientNeverSits() public {
        // A client staked as a verifier, with the heaviest stake: an upheld verdict would
        // refund it, so it must not judge its own job.
        vm.prank(client);
        court.stakeVerifier(800e18);
        for (uint256 c = 0; c < 5; ++c) {
            bytes32 jobHash = _submit(_job(client, c + 1), SERVED);
            _open(jobHash, 1, FAULT, verifiers[c], BOND);
            assertEq(court.eligibleJurors(jobHash, verifiers[c]), 4, "the four other verifiers");
            assertTrue(!_isIn(_assertJury(jobHash), client), "never the client");
        }
    }

    function testNodesOffTheRouteMaySit() public {
        _stakeNodesAsVerifiers(800e18);
        IJobMarket.Job memory job = _job(client, 1);
        job.route = new address[](1);
        job.spanStarts = new uint16[](1);
        job.spanEnds = new uint16[](1);
        job.route[0] = nodes[0];
        job.spanEnds[0] = 10;
        bytes32 jobHash = _submit(job, SERVED);
        _open(jobHash, 0, FAULT, verifiers[0], BOND);
        assertEq(court.eligibleJurors(jobHash, verifiers[0]), 6, "verifiers 1-4 and nodes 1-2");
        address[] memory jurors = _assertJury(jobHash);
        assertTrue(!_isIn(jurors, nodes[0]), "not the job's own node");
        assertTrue(_isIn(jurors, nodes[1]) || _isIn(jurors, nodes[2]), "an 800-token stake off the route sits");
    }

    function testRedrawnJuryIsAllNew() public {
        for (uint256 i = 0; i < 3; ++i) {
            address v = address(uint160(0x2005 + i));
            _fund(v, 100e18);
            vm.prank(v);
            court.stakeVerifier(100e18);
        }
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory first = _assertJury(jobHash);
        _afterReveals(jobHash);
        court.resolve(jobHash);
        assertEq(court.eligibleJurors(jobHash, verifiers[0]), 4, "seven less the three who sat");
        address[] memory second = _assertJury(jobHash);
        assertEq(second.length, 3, "a full second jury");
        for (uint256 i = 0; i < 3; ++i) {
            assertTrue(!_isIn(first, second[i]), "nobody sits twice");
        }
    }

    function testFewerEligibleThanSeatsSeatsEveryoneEligible() public {
        vm.prank(verifiers[3]);
        court.requestVerifierUnstake();
        vm.prank(verifiers[4]);
        court.requestVerifierUnstake();
        bytes32 jobHash = _disputedJob(1, FAULT);
        assertEq(court.eligibleJurors(jobHash, verifiers[0]), 2, "two left");
        address[] memory jurors = _assertJury(jobHash);
        assertEq(jurors.length, 2, "two seats");
        assertTrue(_isIn(jurors, verifiers[1]) && _isIn(jurors, verifiers[2]), "both sit");

        // Two seats need two reveals: one is not a majority.
        _commit(jobHash, jurors[0], true);
        _commit(jobHash, jurors[1], true);
        _reveal(jobHash, jurors[0], true);
        _afterReveals(jobHash);
        court.resolve(jobHash);
        assertEq(court.getDispute(jobHash).round, 1, "round failed");
    }

    function testVerifierBelowTheMinimumIsNeverDrawn() public {
        bytes32 first = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(first);
        _vote(first, _votes(false, false, true));
        court.resolve(first);
        address penalised = jurors[2];
        assertEq(court.verifierStake(penalised), 90e18, "below the minimum");

        for (uint256 i = 0; i < 4; ++i) {
            bytes32 jobHash = _disputedJob(10 + i, FAULT);
            assertEq(court.eligibleJurors(jobHash, verifiers[0]), 3, "everyone else");
            address[] memory again = _assertJury(jobHash);
            assertEq(again.length, 3, "the three others");
            assertTrue(!_isIn(again, penalised), "a stake that is not a verifier's weighs nothing");
        }
    }

    function testEligibleJurorsCountsWhoCouldSit() public {
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        assertEq(court.eligibleJurors(jobHash, verifiers[0]), 4, "all but the challenger");
        assertEq(court.eligibleJurors(jobHash, other), 5, "a non-verifier challenger excludes nobody");
        _stakeNodesAsVerifiers(100e18);
        assertEq(court.eligibleJurors(jobHash, verifiers[0]), 4, "route nodes never count");
        vm.prank(verifiers[1]);
        court.requestVerifierUnstake();
        assertEq(court.eligibleJurors(jobHash, verifiers[0]), 3, "unbonding verifiers do not count");
    }
}

/// @notice With a penalty equal to the minimum stake, one seat locks a minimum verifier's
/// whole free stake: it has no weight in any other draw until its case ends.
contract DisputeJuryLockTest is DisputeFixture {
    function _courtParams() internal pure override returns (IDisputeCourt.CourtParams memory p) {
        p = super._courtParams();
        p.jurorPenalty = 100e18;
    }

    function testVerifierWithNoFreeStakeIsNeverDrawn() public {
        bytes32 a = _disputedJob(1, FAULT);
        address[] memory first = _draw(a);
        assertEq(first.length, 3, "three of four");
        address free = _spare(verifiers[0], first);

        bytes32 b = _disputedJob(2, FAULT);
        assertEq(court.eligibleJurors(b, verifiers[0]), 1, "only the verifier with free stake");
        address[] memory second = _draw(b);
        assertEq(second.length, 1, "one seat");
        assertEq(second[0], free, "the free one");

        bytes32 c = _disputedJob(3, FAULT);
        assertEq(_draw(c).length, 0, "everybody's stake is locked");

        // Once the first case ends its jurors weigh again.
        _vote(a, _unanimous(3, false));
        court.resolve(a);
        assertEq(court.eligibleJurors(c, verifiers[0]), 3, "released");
    }
}

/// @notice One seat per jury and one verifier with nine tenths of the eligible stake: it
/// takes the seat far more often than the three others together.
contract DisputeJuryWeightTest is DisputeFixture {
    function _courtParams() internal pure override returns (IDisputeCourt.CourtParams memory p) {
        p = super._courtParams();
        p.jurySize = 1;
    }

    function testHeavierStakeIsDrawnMoreOften() public {
        address heavy = verifiers[1];
        token.mint(heavy, 2_600e18);
        vm.prank(heavy);
        court.stakeVerifier(2_600e18); // 2,700 of 3,000 eligible
        uint256 draws = 30;
        bytes32[] memory jobs = new bytes32[](draws);
        for (uint256 i = 0; i < draws; ++i) {
            jobs[i] = _disputedJob(i + 1, FAULT);
        }
        vm.roll(block.number + 2);
        uint256 heavyCount = 0;
        for (uint256 i = 0; i < draws; ++i) {
            court.drawJury(jobs[i]);
            address[] memory jurors = _jurors(jobs[i]);
            assertEq(jurors.length, 1, "one seat");
            assertTrue(jurors[0] != verifiers[0], "never the challenger");
            if (jurors[0] == heavy) ++heavyCount;
        }
        assertTrue(heavyCount >= 20, "the heavy stake sits in most juries");
        assertTrue(heavyCount < draws, "but the light ones sit too");
    }
}
