"""Backs up to an S3 bucket and restores from it with the official Python SDK
(docspace-api-sdk 3.7.0), as a DocSpace admin would: keys saved with the authorization API,
the consumer listed by the storage API, then BackupApi with storageType ThirdPartyConsumer.

usage: sdk_s3.py HOST TOKEN ENDPOINT BUCKET ACCESS_KEY SECRET_KEY
"""
import sys
import urllib.request

import checks
from checks import check, until

from docspace_api_sdk import ApiClient, Configuration
from docspace_api_sdk.api.backup.backup_api import BackupApi
from docspace_api_sdk.api.settings.authorization_api import AuthorizationApi
from docspace_api_sdk.api.settings.storage_api import StorageApi
from docspace_api_sdk.models.auth_key import AuthKey
from docspace_api_sdk.models.auth_service_requests_dto import AuthServiceRequestsDto
from docspace_api_sdk.models.backup_dto import BackupDto
from docspace_api_sdk.models.backup_restore_dto import BackupRestoreDto
from docspace_api_sdk.models.backup_storage_type import BackupStorageType
from docspace_api_sdk.models.item_key_value_pair_object_object import ItemKeyValuePairObjectObject

HOST, TOKEN, ENDPOINT, BUCKET, ACCESS, SECRET = sys.argv[1:7]

client = ApiClient(Configuration(host=HOST, access_token=TOKEN))
auth = AuthorizationApi(client)
storage = StorageApi(client)
backup = BackupApi(client)

saved = auth.save_auth_keys(
    AuthServiceRequestsDto(
        name="s3",
        props=[AuthKey(name="acesskey", value=ACCESS), AuthKey(name="secretaccesskey", value=SECRET)],
    )
).response
check(saved is True, "keys saved")
services = auth.get_auth_services().response
s3_service = next(s for s in services if s.name == "s3")
check(all(p.value in ("", None) for p in s3_service.props if p.name in ("acesskey", "secretaccesskey")),
      "saved secrets are not returned")
storages = storage.get_all_backup_storages().response
s3 = next(s for s in storages if s.id == "s3")
check(s3.is_set is True and s3.current is False, f"s3 is set and not current: {s3}")
check(SECRET not in str(storages), "no secret in the storages list")

params = [
    ItemKeyValuePairObjectObject(key=k, value=v)
    for k, v in [
        ("module", "s3"),
        ("bucket", BUCKET),
        ("region", "us-east-1"),
        ("serviceurl", ENDPOINT),
        ("forcepathstyle", "true"),
        ("usehttp", "true"),
    ]
]
started = backup.start_backup(BackupDto(storage_type=BackupStorageType.ThirdPartyConsumer, storage_params=params)).response
done = until(lambda: backup.get_backup_progress().response, lambda p: p.is_completed, "the backup")
check(done.task_id == started.task_id and done.error == "", f"backup to S3 succeeded: {done}")
check(done.link.startswith(f"{ENDPOINT}/{BUCKET}/backup/"), f"a presigned bucket link: {done.link}")
with urllib.request.urlopen(done.link) as resp:
    head = resp.read(4)
check(head == b"\x28\xb5\x2f\xfd", "the link serves a zstd archive")

history = backup.get_backup_history().response
check(len(history) == 1 and history[0].storage_type == BackupStorageType.ThirdPartyConsumer, "one S3 record")
restore = backup.start_backup_restore(BackupRestoreDto(backup_id=started.task_id)).response
check(restore.task_id, "restore started")
finished = until(lambda: backup.get_restore_progress().response, lambda p: p and p.is_completed, "the restore")
check(finished.error == "", f"restore from S3 succeeded: {finished}")

by_name = backup.start_backup_restore(
    BackupRestoreDto(
        backup_id="",
        storage_type=BackupStorageType.ThirdPartyConsumer,
        storage_params=params + [ItemKeyValuePairObjectObject(key="filePath", value=history[0].file_name)],
    )
).response
check(by_name.task_id != restore.task_id, "a second restore, from the object name")
finished = until(lambda: backup.get_restore_progress().response,
                 lambda p: p and p.task_id == by_name.task_id and p.is_completed, "the restore by name")
check(finished.error == "", f"restore by object name succeeded: {finished}")

check(backup.delete_backup(history[0].id).response is True, "backup deleted")
check(backup.get_backup_history().response == [], "history empty")
print(f"sdk s3: {checks.passed} checks passed")
