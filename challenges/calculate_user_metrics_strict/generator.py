# Inputs drawn afresh for every grading (rng is seeded per grading and kept with the
# submission). No ties in engagement and no zero days, so "the top five" has one answer.


def random_users(rng):
    users = []
    for _ in range(rng.randint(3, 12)):
        year, month = rng.choice([(2023, 12), (2024, 1), (2024, 1), (2024, 2)])
        users.append({
            "last_login": "%04d-%02d-%02d" % (year, month, rng.randint(1, 28)),
            "posts": rng.randint(0, 1000),
            "comments": rng.randint(0, 1000),
            "likes": rng.randint(0, 1000),
            "days_active": rng.randint(1, 60),
        })
    return [("calculate_user_metrics", (users, "2024-01-01", "2024-01-31"))]
