def parse_duration(text):
    return 0
