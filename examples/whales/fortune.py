# A saying, picked by the time of the call.
import time

SAYINGS = [
    "A journey of a thousand miles begins with a single step.",
    "Fortune favours the bold.",
    "Slow and steady wins the race.",
]


def main(request):
    return SAYINGS[int(time.time()) % len(SAYINGS)]
