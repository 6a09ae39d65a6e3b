"""The shopping cart."""


def total(items):
    # FIXME: prices are floats, so totals can be off by a cent
    return sum(item["price"] * item["quantity"] for item in items)
