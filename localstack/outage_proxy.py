#!/usr/bin/env python3
"""A TCP pass-through between the deployed functions and the emulator's AWS services, which a
test can cut to simulate an outage of every dependency (DynamoDB, S3, Secrets Manager, SES,
EventBridge, Step Functions) while API Gateway and Lambda keep running.

  outage_proxy.py LISTEN_PORT UPSTREAM_PORT

SIGUSR1: outage. Open connections are reset, new ones refused (the listener is closed).
SIGUSR2: back. The listener opens again on the same port.
Used by localstack/test.sh (functions get AWS_ENDPOINT_URL=http://127.0.0.1:LISTEN_PORT) and
tests/tests/outage.rs.
"""
import asyncio
import signal
import socket
import sys

HOST = "127.0.0.1"


class Proxy:
    def __init__(self, listen_port, upstream_port):
        self.listen_port, self.upstream_port = listen_port, upstream_port
        self.server = None
        self.writers = set()

    async def start(self):
        self.server = await asyncio.start_server(self.handle, HOST, self.listen_port,
                                                 reuse_address=True)

    async def handle(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        for w in (writer, up_writer):
            w.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.writers.add(w)
        await asyncio.gather(self.pipe(reader, up_writer), self.pipe(up_reader, writer))
        self.writers.discard(writer)
        self.writers.discard(up_writer)

    @staticmethod
    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def down(self):
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()
        print("outage: dependencies down", flush=True)

    def up(self):
        if self.server is None:
            asyncio.ensure_future(self.start())
        print("outage: dependencies back", flush=True)


async def main(listen_port, upstream_port):
    proxy = Proxy(listen_port, upstream_port)
    await proxy.start()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, proxy.down)
    loop.add_signal_handler(signal.SIGUSR2, proxy.up)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"outage proxy: {HOST}:{listen_port} -> {upstream_port}", flush=True)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
