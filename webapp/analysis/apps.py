from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "webapp.analysis"
    label = "analysis"
    verbose_name = "AI analysis"

    def ready(self) -> None:
        # Ingest announces committed exams with a signal; queue their analysis.
        from webapp.analysis import services
        from webapp.exams.services import exam_ready_for_analysis

        exam_ready_for_analysis.connect(
            services.on_exam_ready, dispatch_uid="analysis.request_on_ingest"
        )
