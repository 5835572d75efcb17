# A Python function a time trigger calls: it prints which fire it serves (the
# trigger and the time the fire was scheduled for) and answers the body it got.
def main(request):
    trigger = request.headers.get("X-Flint-Trigger", "?")
    scheduled = request.headers.get("X-Flint-Scheduled-Time", "?")
    attempt = request.headers.get("X-Flint-Attempt", "1")
    print(f"{trigger} fired for {scheduled} (attempt {attempt})", flush=True)
    return f"tick {scheduled}: {request.body.decode('utf-8', 'replace')}\n"
