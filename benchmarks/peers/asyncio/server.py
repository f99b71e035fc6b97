#!/usr/bin/env python3
"""A benchmark peer for Sixteen: both protocols on stock asyncio.

  sixteen  read 16 octets (any split; later octets are read and discarded),
           write b'Farewell, client', half-close (write_eof), read and discard
           until the client's EOF or a 2 s linger deadline, close. EOF before
           16 octets: close without a reply. 10 s to deliver the whole request.
  upper    echo every octet ASCII-uppercased (only a-z change), in order;
           always keep reading; close once the client's EOF has arrived and
           everything has been written. 60 s with nothing moving: closed.

Built on asyncio.Protocol (not streams), one process, one thread, the default
event loop (no uvloop). Nothing is logged per session.

Deliberate difference from Sixteen: `upper` output the client has not taken yet
is buffered by the transport in memory WITHOUT LIMIT -- reading is never
paused, and pause_writing/resume_writing are ignored. Sixteen bounds memory
per connection and in all, spills the rest to disk, and closes clients past
--max-pending; this peer does none of that.
"""

import argparse
import asyncio
import os
import signal
import socket
import sys

REPLY = b'Farewell, client'
REQUEST_TIMEOUT = 10.0   # accept to 16th octet
LINGER_TIMEOUT = 2.0     # writing the reply; then waiting for the client's EOF
IDLE_TIMEOUT = 60.0      # upper: nothing moving either way

# bytes.translate with a table is the fastest way to uppercase only a-z.
UPPER_TABLE = bytes(c - 32 if 0x61 <= c <= 0x7a else c for c in range(256))


class SixteenProtocol(asyncio.Protocol):
    __slots__ = ('transport', 'received', 'replied', 'timer')

    def connection_made(self, transport):
        self.transport = transport
        self.received = 0
        self.replied = False
        self.timer = asyncio.get_running_loop().call_later(
            REQUEST_TIMEOUT, transport.abort)

    def data_received(self, data):
        if self.replied:
            return  # discarded
        self.received += len(data)
        if self.received >= 16:
            self.replied = True
            self.timer.cancel()
            transport = self.transport
            # The transport buffers whatever the socket does not take at once.
            transport.write(REPLY)
            # Half-close once the reply is flushed; keep reading so close()
            # never meets unread input (which would send RST).
            transport.write_eof()
            # Covers writing the reply and the linger after it.
            self.timer = asyncio.get_running_loop().call_later(
                LINGER_TIMEOUT, transport.abort)

    def eof_received(self):
        # Short request (no reply), or the client finished after its reply.
        # Returning None closes the transport (after flushing any reply).
        return None

    def connection_lost(self, exc):
        self.timer.cancel()


class UpperProtocol(asyncio.Protocol):
    __slots__ = ('transport', 'loop', 'last_activity', 'timer', 'pending')

    def connection_made(self, transport):
        self.transport = transport
        self.loop = loop = asyncio.get_running_loop()
        self.last_activity = loop.time()
        self.pending = 0
        self.timer = loop.call_later(IDLE_TIMEOUT, self.check_idle)

    def data_received(self, data):
        self.last_activity = self.loop.time()
        # Unbounded by design: the transport queues what the socket does not
        # take; reading is never paused (see the top of this file).
        self.transport.write(data.translate(UPPER_TABLE))

    def eof_received(self):
        self.last_activity = self.loop.time()
        # None closes the transport once its buffer has been written.
        return None

    def pause_writing(self):
        pass  # keep reading regardless: that is the book's deadlock avoided

    def resume_writing(self):
        pass

    def check_idle(self):
        transport = self.transport
        if transport.is_closing():
            return
        # Output draining counts as activity too (a cheap approximation:
        # the pending size changed since the last check).
        pending = transport.get_write_buffer_size()
        if pending != self.pending:
            self.pending = pending
            self.last_activity = self.loop.time()
        after = self.last_activity + IDLE_TIMEOUT - self.loop.time()
        if after > 0:
            self.timer = self.loop.call_later(after, self.check_idle)
        else:
            transport.abort()

    def connection_lost(self, exc):
        self.timer.cancel()


def main():
    parser = argparse.ArgumentParser(
        description='Benchmark peer for Sixteen on stock asyncio '
                    '(single process, single thread).')
    parser.add_argument('--protocol', choices=('sixteen', 'upper'),
                        default='sixteen', help='protocol (default sixteen)')
    parser.add_argument('-p', metavar='PORT', type=int, default=1060,
                        help='TCP port on 127.0.0.1 (default 1060; 0 takes a free one)')
    parser.add_argument('--threads', metavar='N', type=int, default=None,
                        help='accepted for a common interface and ignored: '
                             'this peer always runs one thread')
    args = parser.parse_args()
    if not 0 <= args.p <= 65535:
        parser.error('bad port %d' % args.p)
    asyncio.run(serve(args.protocol, args.p))


async def serve(protocol, port):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(
            sig, lambda: stop.done() or stop.set_result(None))
    factory = SixteenProtocol if protocol == 'sixteen' else UpperProtocol
    server = await loop.create_server(
        factory, '127.0.0.1', port, family=socket.AF_INET,
        reuse_address=True, backlog=4096)
    name = server.sockets[0].getsockname()
    sys.stdout.write('Listening at %r\n' % (name,))
    sys.stdout.flush()
    await stop
    # In-flight sessions are dropped: leave at once, status 0.
    os._exit(0)


if __name__ == '__main__':
    main()
