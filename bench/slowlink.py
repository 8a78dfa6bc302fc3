"""A TCP link with latency, for the benches: the IMAP server as if it answered from further away
than 127.0.0.1 (these machines have no netem to do it in the kernel).

    .venv/bin/python bench/slowlink.py LISTEN_PORT TARGET_PORT DELAY_MS

Listens on 127.0.0.1:LISTEN_PORT and forwards each connection to 127.0.0.1:TARGET_PORT. Every
chunk is passed on DELAY_MS after it arrived, in each direction and in order, at full bandwidth:
a round trip takes twice DELAY_MS more than it would. Prints "ready" once it listens; stops at
the end of its standard input. ``running(...)`` starts and stops it around a block.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from contextlib import contextmanager


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if data is None:
                break
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    delivering = asyncio.create_task(deliver())
    try:
        while data := await reader.read(1 << 16):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    finally:
        queue.put_nowait((0.0, None))
        try:
            await delivering
        except ConnectionError:
            pass
        writer.close()


async def _serve(listen_port: int, target_port: int, delay: float) -> None:
    async def link(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_forward(client_reader, server_writer, delay),
                             _forward(server_reader, client_writer, delay))

    server = await asyncio.start_server(link, "127.0.0.1", listen_port)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our input
    server.close()


@contextmanager
def running(target_port: int, delay_ms: float):
    """The link to 127.0.0.1:``target_port`` as a process of its own (its CPU is not the bench's),
    for the block; yields the port it listens on. Raises RuntimeError if it did not start, or did
    not end cleanly once the block closed its input."""
    from tests.servers.system import free_port
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, str(port), str(target_port), str(delay_ms)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("bench/slowlink.py did not start")
        yield port
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if proc.returncode != 0:
        raise RuntimeError(f"bench/slowlink.py exited with {proc.returncode}")


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
