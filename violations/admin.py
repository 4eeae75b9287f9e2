from django.contrib import admin

from violations.models import HumanDetection, LotoDetection, PpeDetection


class ViolationAdmin(admin.ModelAdmin):
    list_display = ["id", "camera_id", "violation_date", "violation_time", "violation_image"]
    list_filter = ["violation_date", "camera_id"]
    search_fields = ["violation_image"]
    date_hierarchy = "violation_date"
    readonly_fields = ["created_at"]


for model in (HumanDetection, LotoDetection, PpeDetection):
    admin.site.register(model, ViolationAdmin)
