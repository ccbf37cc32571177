"""The unit folder's guard bites: a test here cannot start a server or a process."""

from __future__ import annotations

import socket
import subprocess

import pytest


def test_a_unit_test_cannot_listen_on_a_socket():
    with socket.socket() as s, pytest.raises(AssertionError, match="bind a socket"):
        s.bind(("127.0.0.1", 0))


def test_a_unit_test_cannot_start_a_process():
    with pytest.raises(AssertionError, match="start a process"):
        subprocess.run(["true"], check=False)
