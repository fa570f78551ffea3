# A solution that earns every point; the server grades it at start-up as a self-test.
import heapq


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def calculate_user_metrics(users, start_date, end_date):
    result = {"average_engagement": 0, "top_performers": [], "active_count": 0}
    if not isinstance(users, list) or not isinstance(start_date, str) or not isinstance(end_date, str):
        return result
    active = []
    for user in users:
        if not isinstance(user, dict):
            continue
        login = user.get("last_login")
        if not isinstance(login, str) or not start_date <= login <= end_date:
            continue
        days = _number(user.get("days_active"))
        points = _number(user.get("posts")) * 2 + _number(user.get("comments")) * 1.5 + _number(user.get("likes")) * 0.1
        record = dict(user)
        record["engagement_score"] = points / days if days > 0 else 0.0
        active.append(record)
    if active:
        result["average_engagement"] = sum(r["engagement_score"] for r in active) / len(active)
        result["top_performers"] = heapq.nlargest(5, active, key=lambda r: r["engagement_score"])
        result["active_count"] = len(active)
    return result
