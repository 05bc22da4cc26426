"""The monitoring pipeline, the loop on a cluster: drift check and live-quality check -> one decision ->
grow the dataset with reviewers' labels -> start the training pipeline (warm start), within a cooldown.

``scheduled=true`` retrains without drift or degradation (the weekly run: the week's labels); the
verdicts and the launch record (the cooldown) go to ``drift_reports``, ``quality_reports`` and
``retrain_state``: object storage on a cluster, where each step's pod and its disk end with the step."""

from typing import Any

from kfp import dsl

from components.kfp_components import build
from pipelines.config import PipelineConfig

PIPELINE_NAME = "aidetect-monitoring"


def build_monitoring_pipeline(cfg: PipelineConfig) -> Any:
    """The monitoring pipeline with components in ``cfg.images.train_image`` and defaults from ``cfg``."""
    comps = build(cfg.images.train_image)
    m = cfg.monitoring
    t = cfg.training

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Check drift and live quality; on either, grow the dataset with reviewers' labels "
        "and retrain.",
    )
    def monitoring(
        data_uri: str,
        model_name: str = m.model_name,
        alias: str = m.alias,
        since: str = m.since,
        quality_since: str = m.quality_since,
        inference_log: str = m.inference_log,
        labels_root: str = m.labels_root,
        capture_store: str = m.capture_store,
        mlflow_uri: str = t.mlflow_uri,
        kfp_host: str = m.kfp_host,
        preset: str = t.preset,
        gate_config: str = t.gate_config,
        datasets_root: str = t.datasets_root,
        drift_reports: str = m.drift_reports,
        quality_reports: str = m.quality_reports,
        retrain_state: str = m.retrain_state,
        scheduled: bool = False,
    ) -> None:
        check = comps.drift_check(
            model_name=model_name,
            alias=alias,
            since=since,
            inference_log=inference_log,
            mlflow_uri=mlflow_uri,
            reports_uri=drift_reports,
        ).set_display_name("drift-check")
        check.set_caching_options(False)
        quality = comps.quality_check(
            model_name=model_name,
            alias=alias,
            since=quality_since,
            inference_log=inference_log,
            labels_root=labels_root,
            mlflow_uri=mlflow_uri,
            reports_uri=quality_reports,
        ).set_display_name("quality-check")
        quality.set_caching_options(False)
        decide = comps.decide_retrain(
            drift=check.outputs["verdict"], quality=quality.outputs["verdict"], scheduled=scheduled
        ).set_display_name("decide-retrain")
        decide.set_caching_options(False)
        with dsl.If(decide.outputs["Output"] == True, name="retrain-needed"):  # noqa: E712 (KFP condition)
            grow = comps.grow(
                decision=decide.outputs["decision"],
                data_uri=data_uri,
                datasets_root=datasets_root,
                labels_root=labels_root,
                capture_store=capture_store,
                state_uri=retrain_state,
            ).set_display_name("grow")
            grow.set_caching_options(False)
            with dsl.If(grow.outputs["Output"] == True, name="data-to-train-on"):  # noqa: E712
                trigger = comps.trigger_retrain(
                    verdict=decide.outputs["decision"],
                    train_on=grow.outputs["train_on"],
                    model_name=model_name,
                    kfp_host=kfp_host,
                    preset=preset,
                    gate_config=gate_config,
                    mlflow_uri=mlflow_uri,
                    datasets_root=datasets_root,
                    state_uri=retrain_state,
                ).set_display_name("trigger-retrain")
                trigger.set_caching_options(False)

    return monitoring
