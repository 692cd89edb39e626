# Echo model: returns the request body; used by the benchmarks and tests.
def init():
    pass


def run(raw_data):
    return raw_data
