"""Drives every BackupApi method of the official Python SDK (docspace-api-sdk 3.7.0) against a
running backspace and checks the values it returns.

usage: sdk_backup.py HOST TOKEN
"""
import sys

import checks
from checks import check, until

from docspace_api_sdk import ApiClient, Configuration
from docspace_api_sdk.api.backup.backup_api import BackupApi
from docspace_api_sdk.models.backup_dto import BackupDto
from docspace_api_sdk.models.backup_period import BackupPeriod
from docspace_api_sdk.models.backup_progress_enum import BackupProgressEnum
from docspace_api_sdk.models.backup_restore_dto import BackupRestoreDto
from docspace_api_sdk.models.backup_schedule_dto import BackupScheduleDto
from docspace_api_sdk.models.backup_storage_type import BackupStorageType
from docspace_api_sdk.models.cron import Cron

HOST, TOKEN = sys.argv[1], sys.argv[2]
api = BackupApi(ApiClient(Configuration(host=HOST, access_token=TOKEN)))
anonymous = BackupApi(ApiClient(Configuration(host=HOST)))

state = api.get_backups_service_state().response
check(state.enabled is True, "service state enabled")
check(api.get_backup_history().response == [], "empty history at first")
check(api.get_backups_count().response == 0, "no backups counted at first")
check(api.get_backup_progress().response is None, "no backup job at first")
check(api.cancel_backup().response is False, "nothing to cancel at first")

started = api.start_backup(BackupDto(storage_type=BackupStorageType.DataStore, storage_params=[], dump=False)).response
check(started.task_id, "startbackup returns a task id")
check(started.backup_progress_enum == BackupProgressEnum.Backup, "a backup job")
check(started.error == "", "no error at start")
done = until(lambda: api.get_backup_progress().response, lambda p: p.is_completed, "the backup")
check(done.task_id == started.task_id, "progress reports the same task")
check(done.progress == 100 and done.error == "", f"backup succeeded: {done}")
check(done.link and "/api/2.0/backup/download/" in done.link, "a DataStore backup has a download link")

history = api.get_backup_history().response
check(len(history) == 1, "one history record")
record = history[0]
check(str(record.id) == started.task_id, "the record id is the task id")
check(record.storage_type == BackupStorageType.DataStore, "the record's storage type")
check(record.file_name.endswith(".tar.zst"), "an archive name")
check(record.expires_on > record.created_on, "a DataStore backup expires")
check(api.get_backups_count().response == 1, "one backup counted")

cron = Cron(period=BackupPeriod.EveryWeek, hour=2, day=2)
created = api.create_backup_schedule(
    BackupScheduleDto(storage_type=BackupStorageType.DataStore, storage_params=[], backups_stored=5, cron_params=cron)
).response
check(created is True, "schedule created")
schedule = api.get_backup_schedule().response
check(schedule.storage_type == BackupStorageType.DataStore, "schedule storage type echoed")
check(schedule.backups_stored == 5, "backupsStored echoed")
check(
    (schedule.cron_params.period, schedule.cron_params.hour, schedule.cron_params.day) == (BackupPeriod.EveryWeek, 2, 2),
    f"cronParams echoed: {schedule.cron_params}",
)
check(schedule.last_backup_time.year == 1, "never run yet")
check(schedule.dump is False, "not a dump schedule")
check(api.delete_backup_schedule().response is True, "schedule deleted")
check(api.get_backup_schedule().response is None, "no schedule after delete")

restore = api.start_backup_restore(BackupRestoreDto(backup_id=started.task_id, notify=False)).response
check(restore.backup_progress_enum == BackupProgressEnum.Restore, "a restore job")
# The SDK polls the restore without credentials, as DocSpace allows.
finished = until(lambda: anonymous.get_restore_progress().response, lambda p: p and p.is_completed, "the restore")
check(finished.error == "" and finished.progress == 100, f"restore succeeded: {finished}")

check(api.delete_backup(record.id).response is True, "backup deleted")
check(api.get_backup_history().response == [], "history empty after delete")
check(api.get_backups_count().response == 1, "deleted backups still count")

api.start_backup(BackupDto(storage_type=BackupStorageType.DataStore))
until(lambda: api.get_backup_progress().response, lambda p: p.is_completed, "the second backup")
check(len(api.get_backup_history().response) == 1, "second backup listed")
check(api.delete_backup_history().response is True, "history deleted")
check(api.get_backup_history().response == [], "history empty")

print(f"sdk: {checks.passed} checks passed")
