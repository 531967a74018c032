"""The console: the web page people look at, served by the gateway at ``/console``.

Server-rendered Jinja2 templates and one small script (no bundler, no build step), signed in
with the API's own credentials (:mod:`.session`), reading the gateway's read model through the
same use cases and rules as the API. :func:`.mount.install_console` adds it to the app.
"""
