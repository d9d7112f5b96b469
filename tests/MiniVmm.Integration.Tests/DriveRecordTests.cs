using MiniVmm.Machine.Snapshots;
using MiniVmm.Machine.State;
using MiniVmm.Snapshot.Format;

namespace MiniVmm.Integration.Tests;

/// <summary>The drive record is read from a snapshot file: hostile input, checked before anything is opened.</summary>
public sealed class DriveRecordTests
{
    private static readonly DriveRecord Sample = new(1, 1 << 30, 65536, 0x1234_5678_9abc_def0, 4096, "vm.mvs.drive1");

    [Fact]
    public void A_record_round_trips_through_its_section()
    {
        var section = Sample.ToSection();
        section.Id.Should().Be("drive1");
        DriveRecord.IsDriveSection(section.Id).Should().BeTrue();
        DriveRecord.FromSection(section).Should().Be(Sample);
        DriveRecord.Of([new StateSection("vcpu0.regs", 1, []), section]).Should().Equal(Sample);
    }

    [Theory]
    [InlineData("../etc/shadow")]
    [InlineData("/etc/shadow")]
    [InlineData("..")]
    [InlineData("")]
    public void A_record_naming_anything_but_a_file_in_the_snapshots_directory_is_refused(string name)
    {
        var act = () => DriveRecord.FromSection((Sample with { File = name }).ToSection());
        act.Should().Throw<StateRestoreException>().WithMessage("*file name in the snapshot's directory*");
    }

    [Fact]
    public void Truncated_mislabelled_or_inconsistent_records_are_refused()
    {
        var good = Sample.ToSection();
        var truncated = good with { Data = good.Data[..^3] };
        FluentActions.Invoking(() => DriveRecord.FromSection(truncated)).Should().Throw<StateRestoreException>();
        FluentActions.Invoking(() => DriveRecord.FromSection(good with { Id = "drive7" })).Should().Throw<StateRestoreException>().WithMessage("*records drive 1*");
        FluentActions.Invoking(() => DriveRecord.FromSection(good with { Version = 9 })).Should().Throw<StateRestoreException>().WithMessage("*version 9*");
        FluentActions.Invoking(() => DriveRecord.FromSection((Sample with { BytesStored = Sample.Length + 1 }).ToSection())).Should().Throw<StateRestoreException>();
        FluentActions.Invoking(() => DriveRecord.FromSection((Sample with { BlockSize = 1000 }).ToSection())).Should().Throw<StateRestoreException>();
        DriveRecord.IsDriveSection("drives").Should().BeFalse();
        DriveRecord.IsDriveSection("drive").Should().BeFalse();
    }
}
