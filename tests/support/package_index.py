"""The package index (hub.packages.index) served on loopback in a thread, as tests and benchmarks need it:
connections to 127.0.0.1 count as coming from one project's gateway."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from hub.packages.index import make_app
from tests.support.postgres import free_port


class Index:
    """make_app served in a thread; connections to 127.0.0.1 come from project `project`."""

    def __init__(self, env, project):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve():
            app = make_app(env.db_url, env.state_dir, lambda addr: project if addr == "127.0.0.1" else None)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
            ready.set()

        self.thread = threading.Thread(target=lambda: (self.loop.run_until_complete(serve()), self.loop.run_forever()),
                                       daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
