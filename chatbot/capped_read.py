"""Reading an HTTP answer from a server we call (an action server, Duckling) up to a limit: a
runaway answer fails the call instead of filling the bot's memory."""

from __future__ import annotations

import aiohttp

_CHUNK = 64 * 1024


class AnswerTooLarge(Exception):
    """The answer is larger than the limit (nothing past the limit was read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


async def read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of ``response``; ``AnswerTooLarge`` past ``limit`` bytes."""
    if (response.content_length or 0) > limit:
        raise AnswerTooLarge(limit)
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
