SELECT RELEASE_LOCK('sessionware_migrate')
