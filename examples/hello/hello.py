# A Python function: the runtime calls main(request) and sends back what it returns.
def main(request):
    who = request.params.get("who", "world")
    return f"Hello, {who}, from Python!\n"
