"""Syncs one warehouse's stock: reads its stock list and reports totals and low stock.

A Lambda handler as on AWS, run unmodified by `python3 -m awslambdaric app.handler`. The stock
lists ship with the code (data/NAME.csv), standing in for each warehouse's own system.

Two ways a warehouse can fail, to show the workflow's Retry and Catch:
- `busy_once`: the warehouse system answers "busy" to the first call of a run (WarehouseBusy,
  which the workflow retries);
- no stock list at all (WarehouseUnavailable, which the workflow catches and reports as skipped).
"""

import csv
import os
import tempfile

LOW_STOCK = 10


class WarehouseBusy(Exception):
    pass


class WarehouseUnavailable(Exception):
    pass


def handler(event, context):
    warehouse = event["warehouse"]
    name = warehouse["name"]
    if warehouse.get("busy_once"):
        # One marker per run and warehouse: the first call of each run is refused.
        folder = os.path.join(tempfile.gettempdir(), "stepyard-inventory-sync")
        os.makedirs(folder, exist_ok=True)
        marker = os.path.join(folder, f"{event['run']}-{name}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            print(f"{name}: busy, come back later", flush=True)
            raise WarehouseBusy(f"the {name} warehouse system is busy")
    path = os.path.join(os.environ["LAMBDA_TASK_ROOT"], "data", f"{name}.csv")
    if not os.path.exists(path):
        raise WarehouseUnavailable(f"no stock list for the {name} warehouse")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    units = sum(int(row["quantity"]) for row in rows)
    low = sorted(row["sku"] for row in rows if int(row["quantity"]) < LOW_STOCK)
    print(f"{name}: {len(rows)} items, {units} units, {len(low)} low", flush=True)
    return {"warehouse": name, "status": "synced", "items": len(rows), "units": units, "low_stock": low}
