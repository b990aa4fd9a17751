"""Test doubles and the tooling that measures them: cheating span runners, fault points,
the verifier's calibration. Nothing an operator runs imports this package (an import-linter
contract says so); tests, benchmarks and ``faulty_node`` hand these parts in."""
