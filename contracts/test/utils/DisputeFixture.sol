// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDisputeCourt} from "../../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../../interfaces/IJobMarket.sol";
import {vm} from "./Vm.sol";
import {MarketFixture} from "./MarketFixture.sol";

/// @notice The market fixture with staked nodes and verifiers, a funded client, and the steps
/// of a dispute: open, draw, commit, reveal, resolve. Jurors keep deterministic salts so any
/// test can reveal for them.
abstract contract DisputeFixture is MarketFixture {
    bytes32 internal constant EVIDENCE = keccak256("transcript mismatch at hop 1");
    uint256 internal constant BOND = 20e18;
    uint256 internal constant PENALTY = 10e18;
    uint32 internal constant SERVED = 10;

    IDisputeCourt.Kind internal constant FAULT = IDisputeCourt.Kind.Fault;
    IDisputeCourt.Kind internal constant WITHHOLDING = IDisputeCourt.Kind.Withholding;

    function setUp() public virtual override {
        super.setUp();
        _stakeNodes();
        _stakeVerifiers();
        _deposit(client, 100e18);
    }

    /// @dev Submits `job` as its first hop with `commitment` and returns its hash.
    function _submitWith(IJobMarket.Job memory job, uint32 served, bytes32 commitment)
        internal
        returns (bytes32 jobHash)
    {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.prank(job.route[0]);
        market.submitResult(job, sig, served, commitment);
        return market.hashJob(job);
    }

    function _open(bytes32 jobHash, uint8 hop, IDisputeCourt.Kind kind, address challenger, uint256 bond) internal {
        vm.prank(challenger);
        court.openDispute(jobHash, hop, kind, EVIDENCE, bond);
    }

    /// @dev A job served for `SERVED` tokens, disputed at hop 1 by verifier 0 with the floor bond.
    function _disputedJob(uint256 nonce, IDisputeCourt.Kind kind) internal returns (bytes32 jobHash) {
        jobHash = _submit(_job(client, nonce), SERVED);
        _open(jobHash, 1, kind, verifiers[0], BOND);
    }

    /// @dev Mines the draw block and draws.
    function _draw(bytes32 jobHash) internal returns (address[] memory jurors) {
        vm.roll(court.getDispute(jobHash).drawBlock + 1);
        court.drawJury(jobHash);
        return court.getDispute(jobHash).jurors;
    }

    function _jurors(bytes32 jobHash) internal view returns (address[] memory) {
        return court.getDispute(jobHash).jurors;
    }

    /// @dev Makes no call, so `_reveal` can follow `vm.expectRevert`. A juror sits in one
    /// round of a dispute at most, so the salt need not name the round.
    function _salt(bytes32 jobHash, address juror) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", jobHash, juror));
    }

    function _commitment(bytes32 jobHash, address juror, bool uphold) internal view returns (bytes32) {
        return court.voteCommitment(jobHash, court.getDispute(jobHash).round, juror, uphold, _salt(jobHash, juror));
    }

    function _commit(bytes32 jobHash, address juror, bool uphold) internal {
        bytes32 commitment = _commitment(jobHash, juror, uphold);
        vm.prank(juror);
        court.commitVote(jobHash, commitment);
    }

    function _reveal(bytes32 jobHash, address juror, bool uphold) internal {
        bytes32 salt = _salt(jobHash, juror);
        vm.prank(juror);
        court.revealVote(jobHash, uphold, salt);
    }

    /// @dev Every juror commits `votes[i]`, then every juror reveals (reveals open early once
    /// all have committed).
    function _vote(bytes32 jobHash, bool[] memory votes) internal {
        address[] memory jurors = _jurors(jobHash);
        require(jurors.length == votes.length, "one vote per juror");
        for (uint256 i = 0; i < jurors.length; ++i) {
            _commit(jobHash, jurors[i], votes[i]);
        }
        for (uint256 i = 0; i < jurors.length; ++i) {
            _reveal(jobHash, jurors[i], votes[i]);
        }
    }

    function _unanimous(uint256 seats, bool uphold) internal pure returns (bool[] memory votes) {
        votes = new bool[](seats);
        for (uint256 i = 0; i < seats; ++i) {
            votes[i] = uphold;
        }
    }

    function _votes(bool a, bool b, bool c) internal pure returns (bool[] memory votes) {
        votes = new bool[](3);
        (votes[0], votes[1], votes[2]) = (a, b, c);
    }

    function _afterReveals(bytes32 jobHash) internal {
        vm.warp(court.getDispute(jobHash).revealEndsAt);
    }

    /// @dev Draws, lets the jury vote `votes` and resolves.
    function _judge(bytes32 jobHash, bool[] memory votes) internal returns (address[] memory jurors) {
        jurors = _draw(jobHash);
        _vote(jobHash, votes);
        court.resolve(jobHash);
    }

    function _phase(bytes32 jobHash) internal view returns (IDisputeCourt.Phase) {
        return court.getDispute(jobHash).phase;
    }

    function _status(bytes32 jobHash) internal view returns (IJobMarket.JobStatus) {
        return market.getJob(jobHash).status;
    }

    function _isIn(address[] memory list, address account) internal pure returns (bool) {
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == account) return true;
        }
        return false;
    }

    /// @dev The verifier that is neither `challenger` nor in `jurors`; with five verifiers, a
    /// challenger and a jury of three, exactly one.
    function _spare(address challenger, address[] memory jurors) internal view returns (address) {
        for (uint256 i = 0; i < 5; ++i) {
            if (verifiers[i] != challenger && !_isIn(jurors, verifiers[i])) return verifiers[i];
        }
        revert("no spare verifier");
    }

    /// @dev What an upheld dispute over the fixture's job at `hop` sends the court: the slash
    /// less the other hops' pay, times the bounty share.
    function _courtBounty(uint256 slashed, uint256 othersPay) internal pure returns (uint256) {
        return (slashed - othersPay) * 2_000 / 10_000;
    }
}
