"""A Jupyter kernel client that is ready as soon as the kernel answers.

``jupyter_client``'s ``wait_for_ready`` ends by draining IOPub until no message
has come for 0.2 s. The runner starts a client for every notebook on a warm,
reused kernel, so that wait was 0.2 s of idle time per notebook. Draining
without waiting is enough: nbclient ignores any IOPub message whose parent is
not the request it is waiting for.
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient


class QuickReadyClient(AsyncKernelClient):
    def start_channels(self, *args, **kwargs) -> None:
        super().start_channels(*args, **kwargs)
        # nbclient leaves the channels of a client it did not create the kernel for open (and its
        # heartbeat thread running): the runner closes them after each notebook (see close_clients)
        opened = getattr(self.parent, "revops_clients", None)
        if opened is not None:
            opened.append(self)

    async def wait_for_ready(self, timeout: float | None = None) -> None:  # type: ignore[override]
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                msg = None
            if msg is not None and msg["msg_type"] == "kernel_info_reply":
                try:  # IOPub is connected once a message (the request's status) comes through
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass
                else:
                    handle = getattr(self, "_handle_kernel_info_reply", None)
                    if handle is not None:
                        handle(msg)
                    break
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        while True:  # drain what is already there, without waiting for more
            try:
                await self.iopub_channel.get_msg(timeout=0)
            except Empty:
                break


def close_clients(km) -> None:
    """Stop the channels of every client started on ``km`` since the last call."""
    opened = getattr(km, "revops_clients", None) or []
    while opened:
        kc = opened.pop()
        try:
            kc.stop_channels()
        except Exception:  # pragma: no cover - already closed
            pass
