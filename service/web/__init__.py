"""Server-rendered web pages (Jinja2) for citizens, clerks, handlers, analysts and admins.

The pages call the core library (``triage.cases.intake``, ``triage.cases.casework``, ``triage.cases.stats``),
the API's own view builders (``service.views``) and the shared service modules (``service.theme_cache``,
``service.http_errors``, ``service.labels``) directly, never the JSON API over HTTP nor its route
modules, so a page and the API always apply the same rules: the same role checks, the same masking,
the same workflow. ``service.web.pages.mount`` adds them to the app.
"""
