"""gunicorn settings for registry_app (run with `--chdir` to this folder): a tracker per worker,
opened after the fork (a tracker inherited from the master would answer FORKED) and closed, with a
last merge, when the worker exits."""

wsgi_app = "registry_app:application"


def post_fork(server, worker):
    import registry_app

    registry_app.open_tracker()


def worker_exit(server, worker):
    import registry_app

    registry_app.close_tracker()
