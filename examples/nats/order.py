import json


def main(req):
    """Accepts {"id": N, "qty": Q}; an order without a positive qty fails
    (retried twice, then published to orders.failed with X-Flint-Error)."""
    order = json.loads(req.body or b"{}")
    if order.get("qty", 0) <= 0:
        return json.dumps({"error": "qty must be positive"}), 422
    return json.dumps({"id": order.get("id"), "accepted": True}), 200, {
        "Content-Type": "application/json"}
