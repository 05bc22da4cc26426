"""The analysts' review page, served by ``aidetect serve`` itself at ``/review`` (see docs/serving.md).

The page talks to the platform as any client does: V2 infer for the verdict, plus the small
``/review/api`` (queue of uncertain uploads, label recording, explainer proxy), all behind the
server's bearer-token guard.
"""
