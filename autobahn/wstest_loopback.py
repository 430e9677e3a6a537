# -*- coding: utf-8 -*-
"""wstest, but every listening socket binds to 127.0.0.1 instead of all interfaces.

autobahntestsuite 0.8.2 calls listenWS(factory) with the default interface ''
(0.0.0.0), whatever host the spec's URL names. On a shared machine the fuzzing
server must stay on loopback, so this wrapper (Python 2.7, run by the .venv27
interpreter) patches the reactor's listenTCP before handing over to wstest.

Usage: .venv27/bin/python wstest_loopback.py <wstest arguments>
"""
import sys

# Must come first: installs the epoll reactor, as wstest itself does.
import autobahntestsuite.choosereactor  # noqa: F401
from twisted.internet import reactor

_listen_tcp = reactor.listenTCP


def _listen_tcp_loopback(port, factory, backlog=50, interface=''):
    return _listen_tcp(port, factory, backlog, interface or '127.0.0.1')


reactor.listenTCP = _listen_tcp_loopback

from autobahntestsuite.wstest import run  # noqa: E402

if __name__ == '__main__':
    sys.argv[0] = 'wstest'
    sys.exit(run())
